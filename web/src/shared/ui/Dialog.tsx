import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

/**
 * A modal <dialog>, open while mounted: the browser moves focus into it, traps it and closes
 * it on Escape; closing (Escape or unmount) returns focus to where it was.
 */
export function Dialog({ labelledBy, onClose, children }: { labelledBy: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open) dialog.close();
    };
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={labelledBy} onClose={onClose}>
      {children}
    </dialog>
  );
}
