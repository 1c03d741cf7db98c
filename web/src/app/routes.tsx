/**
 * Every screen, who may see it, and the feature that draws it. Features load lazily, so the
 * first screen carries only what it needs.
 */
import type { ComponentType } from "preact";
import { lazy } from "preact-iso";
import type { Role } from "@/shared/auth/session";
import { paths } from "@/shared/paths";

/** A screen of the app. */
export interface Screen {
  path: string;
  component: ComponentType;
  /** Roles that may open it; undefined: anyone, signed in or not. */
  roles?: readonly Role[];
}

const auth = () => import("@/features/auth");
const doctors = () => import("@/features/doctors");
const appointments = () => import("@/features/appointments");
const audit = () => import("@/features/audit");
const SignedInOnly: readonly Role[] = ["patient", "doctor", "admin", "auditor"];

export const screens: Screen[] = [
  { path: paths.signIn, component: lazy(() => auth().then((m) => m.SignInPage)) },
  { path: paths.signUp, component: lazy(() => auth().then((m) => m.SignUpPage)) },
  { path: paths.docs, component: lazy(() => import("@/features/docs").then((m) => m.DocsPage)) },
  { path: paths.profile, roles: SignedInOnly, component: lazy(() => import("@/features/profile").then((m) => m.ProfilePage)) },
  { path: paths.doctors, roles: ["patient", "admin"], component: lazy(() => doctors().then((m) => m.FindDoctorPage)) },
  { path: "/doctors/:id", roles: ["patient", "admin"], component: lazy(() => doctors().then((m) => m.DoctorPage)) },
  { path: paths.appointments, roles: ["patient"], component: lazy(() => appointments().then((m) => m.PatientAppointmentsPage)) },
  { path: "/appointments/:id/reschedule", roles: ["patient", "doctor"], component: lazy(() => appointments().then((m) => m.ReschedulePage)) },
  { path: "/appointments/:id/waiting", roles: ["patient"], component: lazy(() => import("@/features/waiting-room").then((m) => m.WaitingRoomPage)) },
  { path: "/appointments/:id/room", roles: ["patient", "doctor"], component: lazy(() => import("@/features/consultation").then((m) => m.ConsultationPage)) },
  { path: paths.dashboard, roles: ["doctor"], component: lazy(() => import("./DoctorHome").then((m) => m.DoctorHome)) },
  { path: paths.availability, roles: ["doctor"], component: lazy(() => import("@/features/availability").then((m) => m.AvailabilityPage)) },
  { path: paths.notifications, roles: SignedInOnly, component: lazy(() => import("@/features/notifications").then((m) => m.NotificationsPage)) },
  { path: paths.audit, roles: ["auditor", "admin"], component: lazy(() => audit().then((m) => m.AuditLogPage)) },
  { path: paths.accessLog, roles: ["auditor", "admin"], component: lazy(() => audit().then((m) => m.AccessLogPage)) },
];
