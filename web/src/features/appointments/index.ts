export { PatientAppointmentsPage } from "./PatientAppointmentsPage";
export { ReschedulePage } from "./ReschedulePage";
