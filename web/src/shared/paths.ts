import type { Role } from "./auth/session";

/** Every screen's path, so that features link to each other without importing each other. */
export const paths = {
  home: "/",
  signIn: "/signin",
  signUp: "/signup",
  profile: "/profile",
  doctors: "/doctors",
  doctor: (id: string) => `/doctors/${id}`,
  appointments: "/appointments",
  reschedule: (id: string) => `/appointments/${id}/reschedule`,
  waitingRoom: (id: string) => `/appointments/${id}/waiting`,
  room: (id: string) => `/appointments/${id}/room`,
  dashboard: "/dashboard",
  availability: "/availability",
  notifications: "/notifications",
  audit: "/audit",
  accessLog: "/audit/access",
  docs: "/docs",
} as const;

/** Where a role lands after signing in: their home screen. */
export function homeOf(role: Role | string): string {
  switch (role) {
    case "patient":
      return paths.appointments;
    case "doctor":
      return paths.dashboard;
    default:
      return paths.audit;
  }
}
