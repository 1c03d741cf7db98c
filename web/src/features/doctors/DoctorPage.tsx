import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the doctors feature. */
export function DoctorPage() {
  return <Page title="DoctorPage">Coming soon.</Page>;
}
