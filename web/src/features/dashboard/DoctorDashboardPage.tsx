import type { ComponentChildren } from "preact";
import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the dashboard feature. `aside` is the waiting-room queue. */
export function DoctorDashboardPage({ aside }: { aside?: ComponentChildren }) {
  return (
    <Page title="Dashboard">
      Coming soon.
      {aside}
    </Page>
  );
}
