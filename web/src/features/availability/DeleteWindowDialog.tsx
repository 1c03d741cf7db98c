import { useId, useState } from "preact/hooks";
import { removeWindow } from "./api";
import { explained, type Window } from "./logic";
import { Dialog } from "@/shared/ui/Dialog";

/** Asks before deleting a window; a refusal goes back to the list, next to the window. */
export function DeleteWindowDialog({
  doctorId,
  window,
  label,
  onDeleted,
  onRefused,
  onClose,
}: {
  doctorId: string;
  window: Window;
  /** "Mon 7 Dec, 09:00–12:00 (Europe/Berlin)". */
  label: string;
  onDeleted: () => void;
  onRefused: (error: unknown) => void;
  onClose: () => void;
}) {
  const id = useId();
  const [busy, setBusy] = useState(false);
  async function remove() {
    setBusy(true);
    try {
      await removeWindow(doctorId, window.id);
      onDeleted();
    } catch (e) {
      onRefused(explained(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Dialog labelledBy={id} onClose={onClose}>
      <h2 id={id}>Delete this window?</h2>
      <p>{label}</p>
      <p class="hint">Patients can no longer book the free time in it.</p>
      <div class="row">
        <button type="button" class="button danger solid" disabled={busy} aria-busy={busy} onClick={remove}>
          {busy ? "Deleting…" : "Yes, delete it"}
        </button>
        <button type="button" class="button secondary" onClick={onClose}>
          Keep it
        </button>
      </div>
    </Dialog>
  );
}
