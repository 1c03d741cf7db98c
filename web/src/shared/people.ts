/** How people are named on screen. */

/** "Dr. Meredith Grey" as is; "Meredith Grey" as "Dr Meredith Grey". */
export function doctorTitle(name: string): string {
  return /^dr\b\.?/i.test(name.trim()) ? name.trim() : `Dr ${name.trim()}`;
}
