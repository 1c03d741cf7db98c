import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the auth feature. */
export function SignUpPage() {
  return <Page title="SignUpPage">Coming soon.</Page>;
}
