import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the doctors feature. */
export function FindDoctorPage() {
  return <Page title="FindDoctorPage">Coming soon.</Page>;
}
