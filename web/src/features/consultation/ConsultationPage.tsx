import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the consultation feature. */
export function ConsultationPage() {
  return <Page title="ConsultationPage">Coming soon.</Page>;
}
