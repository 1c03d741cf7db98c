/** What is left of an offer's hold at `now`: "4:07", or undefined once it has lapsed. */
export function remaining(expiresAt: string, now: number): string | undefined {
  const left = Math.floor((Date.parse(expiresAt) - now) / 1000);
  if (!Number.isFinite(left) || left <= 0) return undefined;
  const minutes = Math.floor(left / 60);
  const seconds = left % 60;
  return `${minutes}:${seconds.toString().padStart(2, "0")}`;
}
