/** The file name of an export from its Content-Disposition header (a dated default otherwise). */
export function exportFilename(disposition: string | null, today = new Date()): string {
  const match = /filename="([^"\\/]+)"/.exec(disposition ?? "");
  return match?.[1] ?? `telemed-export-${today.toISOString().slice(0, 10)}.json`;
}
