import { Page } from "@/shared/ui/Page";

/** Placeholder: built by the docs feature. */
export function DocsPage() {
  return <Page title="DocsPage">Coming soon.</Page>;
}
