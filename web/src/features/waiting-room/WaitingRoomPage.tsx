import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the waiting-room feature. */
export function WaitingRoomPage() {
  return <Page title="WaitingRoomPage">Coming soon.</Page>;
}
