export { WaitingRoomPage } from "./WaitingRoomPage";
export { WaitingQueue } from "./WaitingQueue";
