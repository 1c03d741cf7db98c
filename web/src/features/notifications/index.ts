export { NotificationsPage } from "./NotificationsPage";
export { NotificationBadge } from "./NotificationBadge";
