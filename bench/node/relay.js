'use strict';
// The Node reference of `bench --suite rooms`: a plain Socket.IO 4 relay, what a frontend team
// would otherwise run. A client's handshake carries `auth: {token, appointment_id}`; the token
// is an HS256 JWT checked with Telemed's secret, issuer and audience, and the client joins the
// room of that appointment (two members at most). `call:ice` and `chat:send` go to the other
// member (`call:ice` and `chat:message`, nothing stored) and are acked once relayed.
//
// Prints `port=N` once listening on 127.0.0.1 (port 0 unless PORT is set).

const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { Server } = require('socket.io');
const jwt = require('jsonwebtoken');

const secret = process.env.TELEMED_JWT_SECRET;
if (!secret) {
  console.error('TELEMED_JWT_SECRET must be set');
  process.exit(2);
}
const verifyOptions = { algorithms: ['HS256'], issuer: 'telemed', audience: 'telemed-api' };

const server = http.createServer({ noDelay: true });
const io = new Server(server, { serveClient: false });

io.use((socket, next) => {
  const { token, appointment_id: room } = socket.handshake.auth ?? {};
  let claims;
  try {
    claims = jwt.verify(token, secret, verifyOptions);
  } catch (error) {
    return next(new Error(`unauthenticated: ${error.message}`));
  }
  if (typeof room !== 'string' || room === '') {
    return next(new Error('the handshake must carry auth: {token, appointment_id}'));
  }
  if ((io.of('/').adapter.rooms.get(room)?.size ?? 0) >= 2) {
    return next(new Error('this room has two members already'));
  }
  socket.data.user = claims.sub;
  socket.data.room = room;
  return next();
});

io.on('connection', (socket) => {
  const { user, room } = socket.data;
  socket.join(room);
  socket.on('call:ice', (data, ack) => {
    socket.to(room).emit('call:ice', { call_id: data?.call_id, from: user, candidate: data?.candidate });
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('chat:send', (data, ack) => {
    const message = {
      id: randomUUID(),
      appointment_id: room,
      sender_id: user,
      content: data?.content,
      client_msg_id: data?.client_msg_id ?? null,
      sent_at: new Date().toISOString(),
    };
    socket.to(room).emit('chat:message', message);
    if (typeof ack === 'function') ack(message);
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`port=${server.address().port}`);
});
