import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the audit feature. */
export function AccessLogPage() {
  return <Page title="AccessLogPage">Coming soon.</Page>;
}
