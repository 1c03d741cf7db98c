import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the appointments feature. */
export function PatientAppointmentsPage() {
  return <Page title="PatientAppointmentsPage">Coming soon.</Page>;
}
