export { DocsPage } from "./DocsPage";
