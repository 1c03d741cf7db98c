import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the profile feature. */
export function ProfilePage() {
  return <Page title="ProfilePage">Coming soon.</Page>;
}
