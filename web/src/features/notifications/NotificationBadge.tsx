import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the notifications feature. */
export function NotificationBadge() {
  return <Page title="NotificationBadge">Coming soon.</Page>;
}
