export { DoctorDashboardPage } from "./DoctorDashboardPage";
