export { AvailabilityPage } from "./AvailabilityPage";
