/** Words about doctors for people: titles, language names, bio excerpts, search links. */


let languageNames: Intl.DisplayNames | undefined;

/** "en" as "English"; an unknown tag as given. */
export function languageName(tag: string): string {
  try {
    languageNames ??= new Intl.DisplayNames(["en"], { type: "language" });
    return languageNames.of(tag) ?? tag;
  } catch {
    return tag;
  }
}

/** The start of a text, cut at a word, with an ellipsis when cut. */
export function excerpt(text: string, max = 180): string {
  const clean = text.replace(/\s+/g, " ").trim();
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:–-]+$/, "")}…`;
}

/** The search's query string ("?specialty=cardiology&q=grey"), without empty fields. */
export function searchQuery(fields: { specialty?: string; q?: string }): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v?.trim()) params.set(k, v.trim());
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** Specialties of all doctors, each once (case-insensitive), sorted. */
export function specialtiesOf(doctors: readonly { specialties: readonly string[] }[]): string[] {
  const seen = new Map<string, string>();
  for (const d of doctors) for (const s of d.specialties) if (!seen.has(s.toLowerCase())) seen.set(s.toLowerCase(), s);
  return [...seen.values()].sort((a, b) => a.localeCompare(b));
}

/** Whether a failed booking may be retried with the same Idempotency-Key (its outcome is unknown). */
export function keepIdempotencyKey(status: number): boolean {
  return status === 0 || status >= 500;
}

/** A new Idempotency-Key (random UUID, also where crypto.randomUUID is missing). */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
