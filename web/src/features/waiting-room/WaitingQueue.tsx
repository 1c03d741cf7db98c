import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the waiting-room feature. */
export function WaitingQueue() {
  return <Page title="WaitingQueue">Coming soon.</Page>;
}
