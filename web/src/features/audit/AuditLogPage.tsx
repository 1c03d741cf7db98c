import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the audit feature. */
export function AuditLogPage() {
  return <Page title="AuditLogPage">Coming soon.</Page>;
}
