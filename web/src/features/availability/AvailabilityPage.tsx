import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the availability feature. */
export function AvailabilityPage() {
  return <Page title="AvailabilityPage">Coming soon.</Page>;
}
