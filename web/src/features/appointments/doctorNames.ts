import { useEffect, useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { doctorTitle } from "@/shared/people";

const cache = new Map<string, Promise<string>>();


/** A doctor's title, fetched once per page load. */
export function doctorName(id: string): Promise<string> {
  let name = cache.get(id);
  if (!name) {
    name = api
      .GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: id } } })
      .then((r) => doctorTitle(must(r).name));
    name.catch(() => cache.delete(id));
    cache.set(id, name);
  }
  return name;
}

/** The names of these doctors as they arrive; "your doctor" until then or on failure. */
export function useDoctorNames(ids: readonly string[]): (id: string) => string {
  const [names, setNames] = useState<Record<string, string>>({});
  const wanted = [...new Set(ids)].sort().join(",");
  useEffect(() => {
    let alive = true;
    for (const id of wanted ? wanted.split(",") : []) {
      doctorName(id)
        .then((name) => alive && setNames((n) => (n[id] === name ? n : { ...n, [id]: name })))
        .catch(() => undefined);
    }
    return () => {
      alive = false;
    };
  }, [wanted]);
  return (id) => names[id] ?? "your doctor";
}
