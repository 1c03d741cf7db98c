import { useEffect, useState } from "preact/hooks";
import { patientName } from "./api";

/** Names of the given patients, filled in as they load (cached across screens). */
export function usePatientNames(ids: readonly string[]): Record<string, string> {
  const [names, setNames] = useState<Record<string, string>>({});
  const key = [...new Set(ids)].sort().join(",");
  useEffect(() => {
    let live = true;
    for (const id of key ? key.split(",") : []) {
      patientName(id)
        .then((name) => live && setNames((n) => (n[id] === name ? n : { ...n, [id]: name })))
        .catch(() => undefined);
    }
    return () => {
      live = false;
    };
  }, [key]);
  return names;
}
