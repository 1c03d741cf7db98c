/**
 * The time zones a person may pick: the platform's IANA list, plus UTC and the current value
 * (which the platform may list under another name), each labelled with its offset now.
 */
import { offsetMinutes } from "@/shared/time/zone";

export interface ZoneOption {
  value: string;
  label: string;
}

/** "UTC+05:30" for 330 minutes. */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "−" : "+";
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** The platform's zones (empty if it cannot list them). */
export function platformZones(): string[] {
  const intl = Intl as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf?.("timeZone") ?? [];
  } catch {
    return [];
  }
}

/** Sorted, unique options including `current` and UTC. */
export function zoneOptions(current: string, zones: readonly string[] = platformZones(), now = new Date()): ZoneOption[] {
  const all = [...new Set([...zones, "UTC", ...(current ? [current] : [])])].sort((a, b) => a.localeCompare(b));
  return all.map((zone) => {
    let label = zone.replace(/_/g, " ");
    try {
      label = `${label} (${formatOffset(offsetMinutes(now, zone))})`;
    } catch {
      // An unknown zone keeps its bare name; the server will say what is wrong with it.
    }
    return { value: zone, label };
  });
}
