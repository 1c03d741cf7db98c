export { AuditLogPage } from "./AuditLogPage";
export { AccessLogPage } from "./AccessLogPage";
