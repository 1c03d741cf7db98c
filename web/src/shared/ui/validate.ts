import type { Constraints } from "./form";

/**
 * The first constraint `value` breaks, as a message in the server's words; undefined when it
 * keeps them all. Lengths count characters (code points), as the server does.
 */
export function check(value: string, c: Constraints): string | undefined {
  const trimmed = value.trim();
  if (trimmed === "") return c.required ? "is required" : undefined;
  const length = [...value].length;
  if (c.minLength !== undefined && length < c.minLength) return `must be at least ${c.minLength} characters`;
  if (c.maxLength !== undefined && length > c.maxLength) return `must be at most ${c.maxLength} characters`;
  if (c.pattern !== undefined && !new RegExp(`^(?:${c.pattern})$`, "u").test(value)) return "has the wrong format";
  const number = Number(value);
  if (c.min !== undefined && number < c.min) return `must be at least ${c.min}`;
  if (c.max !== undefined && number > c.max) return `must be at most ${c.max}`;
  return undefined;
}
