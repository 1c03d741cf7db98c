import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the auth feature. */
export function SignInPage() {
  return <Page title="SignInPage">Coming soon.</Page>;
}
