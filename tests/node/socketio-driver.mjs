// Drives the official socket.io-client v4 for the black-box tests (tests/blackbox/socketio.rs).
//
// Usage: node driver.mjs <server-url>
// Commands arrive as JSON lines on stdin; everything observed leaves as JSON lines on stdout:
//   {"op":"connect","name":N,"token":T|null}  -> {"op":"connected","name":N}
//                                               | {"op":"connect_error","name":N,"message":M}
//   {"op":"emit","name":N,"id":K,"event":E,"data":D}
//                                             -> {"op":"ack","name":N,"id":K,"data":A}
//   {"op":"close","name":N}                   -> {"op":"closed","name":N}
//   every server event on socket N            -> {"op":"event","name":N,"event":E,"data":D}
//   a disconnect by the server                -> {"op":"disconnect","name":N,"reason":R}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const url = process.argv[2];
const sockets = new Map();
const say = (message) => process.stdout.write(JSON.stringify(message) + "\n");

function connect({ name, token }) {
  const socket = io(url, {
    path: "/socket.io/",
    transports: ["websocket"],
    reconnection: false,
    auth: token === null ? undefined : { token },
  });
  sockets.set(name, socket);
  socket.on("connect", () => say({ op: "connected", name }));
  socket.on("connect_error", (error) => say({ op: "connect_error", name, message: error.message }));
  socket.on("disconnect", (reason) => say({ op: "disconnect", name, reason }));
  socket.onAny((event, data) => say({ op: "event", name, event, data }));
}

async function emit({ name, id, event, data }) {
  const socket = sockets.get(name);
  try {
    const answer = await socket.timeout(10000).emitWithAck(event, data);
    say({ op: "ack", name, id, data: answer });
  } catch (error) {
    say({ op: "ack", name, id, timeout: String(error) });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  switch (command.op) {
    case "connect": connect(command); break;
    case "emit": emit(command); break;
    case "close":
      sockets.get(command.name)?.close();
      say({ op: "closed", name: command.name });
      break;
    default: say({ op: "unknown", command });
  }
});
lines.on("close", () => {
  for (const socket of sockets.values()) socket.close();
  process.exit(0);
});
