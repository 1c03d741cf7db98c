/** "Saved" in a live region while the form still holds what was saved. */
export function SavedStatus({ saved, current }: { saved: Record<string, string> | null; current: Record<string, string> }) {
  const clean = saved !== null && Object.keys(current).every((k) => current[k] === saved[k]);
  return (
    <p class="profile-saved" role="status">
      {clean ? "Saved." : ""}
    </p>
  );
}
