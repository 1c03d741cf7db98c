import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

/**
 * A modal <dialog>, open while mounted: the browser traps focus and closes it on Escape;
 * closing (Escape or unmount) returns focus to where it was.
 */
export function Modal({ labelledBy, onClose, children }: { labelledBy: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open) dialog.close();
    };
  }, []);
  return (
    <dialog ref={ref} class="dash-dialog" aria-labelledby={labelledBy} onClose={onClose}>
      {children}
    </dialog>
  );
}
