import { DoctorDashboardPage } from "@/features/dashboard";
import { WaitingQueue } from "@/features/waiting-room";

/** The doctor's home: the dashboard with the live waiting-room queue beside it. */
export function DoctorHome() {
  return <DoctorDashboardPage aside={<WaitingQueue />} />;
}
