import { lazy } from "preact-iso";

/**
 * The inbox, channel preferences and Web Push settings. Loaded on demand: the header badge
 * comes from this folder too, and must not carry the whole screen into the first load.
 */
export const NotificationsPage = lazy(() => import("./NotificationsScreen").then((m) => m.NotificationsScreen));
