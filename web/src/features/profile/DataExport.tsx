import { useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { type ProblemError, toProblem } from "@/shared/api/problem";
import { ErrorState } from "@/shared/ui/states";
import { exportFilename } from "./exportFile";

/** "Download my data": everything Telemed holds about the user, as one JSON file. */
export function DataExport() {
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState("");
  const [error, setError] = useState<ProblemError | null>(null);

  async function download() {
    setBusy(true);
    setDone("");
    setError(null);
    try {
      const result = await api.GET("/api/v1/me/export", { parseAs: "blob" });
      const blob = must(result) as unknown as Blob;
      const name = exportFilename(result.response.headers.get("content-disposition"));
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setDone(`Downloaded ${name}.`);
    } catch (e) {
      setError(toProblem(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card profile-card" aria-labelledby="profile-export-h">
      <h2 id="profile-export-h">Your data</h2>
      <p class="muted">
        Download everything Telemed holds about you: your profile, appointments with their history, messages, calls and
        notifications (as a FHIR R4 bundle that other health systems can read), who read your records, and the audit log's
        fingerprint at the time of the download.
      </p>
      <button type="button" class="button secondary" onClick={() => void download()} disabled={busy} aria-busy={busy}>
        {busy ? "Preparing your data…" : "Download my data"}
      </button>
      <p role="status" class="small">
        {done}
      </p>
      {error && <ErrorState error={error} retry={() => void download()} />}
    </section>
  );
}
