export { ConsultationPage } from "./ConsultationPage";
