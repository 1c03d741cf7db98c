import type { ComponentChildren } from "preact";

/** A table cell naming its column in `data-label` (shown on phones, where rows become cards). */
export function Cell({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <td data-label={label}>
      <div class="audit-cell">{children}</div>
    </td>
  );
}
