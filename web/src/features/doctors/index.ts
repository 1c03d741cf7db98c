export { FindDoctorPage } from "./FindDoctorPage";
export { DoctorPage } from "./DoctorPage";
