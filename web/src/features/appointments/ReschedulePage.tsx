import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the appointments feature. */
export function ReschedulePage() {
  return <Page title="ReschedulePage">Coming soon.</Page>;
}
