// A real socket.io-client (4.x, or 2.x with --v2) driven by the integration tests.
//
//   node sio_client.js --url http://127.0.0.1:PORT --path /app_socketio/socket.io/
//        [--ns /psdm_ws] [--join ROOM[,ROOM...]] [--v2] [--count N] [--timeout-ms MS]
//        [--no-reconnect] [--insecure] [--resume]
//
// --resume: keep positions as a page does (one past the last offset of each partition, from the
// messages and the join's acknowledgement) and send them with every join, so that a reconnect
// resumes (README "What clients get"). Nothing is dropped here: the tests see exactly what the
// worker sent. A join answered recovered: false prints {"ev":"resync","room":..,"reason":..}.
//
// Prints one JSON object per line on stdout, for the test to read:
//   {"ev":"connect","id":..} {"ev":"ack","room":..,"args":[..]} {"ev":"ready"} (all joins acked)
//   {"ev":"msg","data":{..}} {"ev":"disconnect","reason":..} {"ev":"connect_error","message":..}
//   {"ev":"done","count":N} (after --count messages; then it exits 0)
// Exits 1 after --timeout-ms (default 60000) without reaching --count.
"use strict";
const path = require("path");

const args = { url: null, path: "/socket.io/", ns: "/psdm_ws", join: [], v2: false, count: -1, timeout: 60000,
               reconnect: true, resume: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = argv[i + 1];
  if (a === "--url") { args.url = v; i++; }
  else if (a === "--path") { args.path = v; i++; }
  else if (a === "--ns") { args.ns = v; i++; }
  else if (a === "--join") { args.join = v.split(",").filter(Boolean); i++; }
  else if (a === "--v2") { args.v2 = true; }
  else if (a === "--count") { args.count = parseInt(v, 10); i++; }
  else if (a === "--timeout-ms") { args.timeout = parseInt(v, 10); i++; }
  else if (a === "--no-reconnect") { args.reconnect = false; }
  else if (a === "--insecure") { args.insecure = true; }
  else if (a === "--resume") { args.resume = true; }
  else { console.error(`sio_client: unknown argument ${a}`); process.exit(2); }
}

const modules = path.join(__dirname, "..", "..", "..", "node_modules");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const opts = { transports: ["websocket"], path: args.path, reconnection: args.reconnect, forceNew: true };
if (args.insecure) opts.rejectUnauthorized = false;  // the tests' self-signed certificate
let socket;
if (args.v2) {
  const io = require(path.join(modules, "socket.io-client-v2"));
  socket = io(args.url + args.ns, opts);
} else {
  const { io } = require(path.join(modules, "socket.io-client"));
  socket = io(args.url + args.ns, opts);
}

let received = 0;
const positions = {};  // --resume: partition key -> next offset
const adopt = (given, all) => {
  for (const [key, next] of Object.entries(given || {}))
    if (!(key in positions) || (all && next > positions[key])) positions[key] = next;
};
socket.on("connect", () => {
  out({ ev: "connect", id: socket.id });
  let pending = args.join.length;
  if (pending === 0) out({ ev: "ready" });
  for (const room of args.join) {
    const acked = (...ackArgs) => {
      out({ ev: "ack", room, args: ackArgs });
      const a = ackArgs[0];
      if (args.resume && a && "recovered" in a) {
        adopt(a.positions, !a.recovered);
        if (!a.recovered) out({ ev: "resync", room, reason: a.reason });
      }
      if (--pending === 0) out({ ev: "ready" });
    };
    if (args.resume) socket.emit("join", room, Object.assign({}, positions), acked);
    else socket.emit("join", room, acked);
  }
});
socket.on("connect_error", (e) => out({ ev: "connect_error", message: String(e && (e.message || e)) }));
socket.on("error", (e) => out({ ev: "error", message: String(e && (e.message || e)) }));
socket.on("disconnect", (reason) => out({ ev: "disconnect", reason }));
socket.on("psdm_ws_msg", (data) => {
  out({ ev: "msg", data });
  const at = data && data.psdm_ws_msg_position;
  if (args.resume && typeof at === "string") {
    const cut = at.lastIndexOf("/");
    const key = at.slice(0, cut), next = parseInt(at.slice(cut + 1), 10) + 1;
    if (!(key in positions) || next > positions[key]) positions[key] = next;
  }
  if (++received === args.count) {
    out({ ev: "done", count: received });
    socket.close();
    process.exit(0);
  }
});
setTimeout(() => { out({ ev: "timeout", count: received }); process.exit(1); }, args.timeout);
process.on("SIGTERM", () => { socket.close(); process.exit(0); });
