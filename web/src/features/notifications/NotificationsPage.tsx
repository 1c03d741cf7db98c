import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the notifications feature. */
export function NotificationsPage() {
  return <Page title="NotificationsPage">Coming soon.</Page>;
}
