#!/usr/bin/node
// The Node peer of `make bench` (bench/yardsticks.py; see bench/README.md): what a Node shop
// would build instead of psdm_socketd. The npm `socket.io` server, fed by `kafkajs`, both
// from the repository's package.json (scripts/deps.sh bench installs them into
// ./node_modules). Same contract as the worker for the pages:
//
//   namespace /psdm_ws at PATH (websocket transport only, as the worker);
//   `join` ROOM [POSITIONS] with an optional ack: any room is allowed (the bench runs the
//   worker with authz = allow-all), the ack is `[]`; `leave` ROOM likewise;
//   every Kafka record of TOPICS is parsed and emitted as `psdm_ws_msg` to the room its
//   `experiment_name` names, with "psdm_ws_msg_type": TOPIC and
//   "psdm_ws_msg_position": "TOPIC/PARTITION/OFFSET" added (records of GLOBAL_TOPICS also to
//   the_global_room). Records that are not JSON objects with a string experiment_name are
//   skipped and counted.
//
//   node bench/peer/server.js --port P --bootstrap HOST:PORT [--topics elog]
//        [--path /bench_socketio/socket.io/] [--fetch-wait-ms 10] [--global-topics experiments]
//        [--offset-reset earliest|latest]
//
// Logs to stderr, one line per event; "listening on 127.0.0.1:P" once the HTTP server
// listens, "ready: N partition(s) assigned" once the consumer group has its partitions.
// SIGTERM / SIGINT: stops the consumer and the server, exits 0.
"use strict";

const http = require("http");
const { Server } = require("socket.io");
const { Kafka, logLevel } = require("kafkajs");

const NAMESPACE = "/psdm_ws";
const GLOBAL_ROOM = "the_global_room";

function parseArgs(argv) {
    const o = {
        host: "127.0.0.1", port: 0, bootstrap: "", topics: "elog", path: "/bench_socketio/socket.io/",
        fetchWaitMs: 10, globalTopics: "experiments", offsetReset: "earliest",
    };
    const names = {
        "--host": "host", "--port": "port", "--bootstrap": "bootstrap", "--topics": "topics", "--path": "path",
        "--fetch-wait-ms": "fetchWaitMs", "--global-topics": "globalTopics", "--offset-reset": "offsetReset",
    };
    for (let i = 2; i < argv.length; i += 2) {
        const key = names[argv[i]];
        if (!key || i + 1 >= argv.length) usage(`bad option ${argv[i]}`);
        o[key] = argv[i + 1];
    }
    o.port = Number(o.port);
    o.fetchWaitMs = Number(o.fetchWaitMs);
    if (!Number.isInteger(o.port) || o.port <= 0 || o.port > 65535) usage("--port is required (1..65535)");
    if (!o.bootstrap) usage("--bootstrap is required");
    if (!Number.isInteger(o.fetchWaitMs) || o.fetchWaitMs < 0) usage("--fetch-wait-ms must be an integer >= 0");
    if (!/^127\./.test(o.host)) usage("--host must be in 127.0.0.0/8 (loopback only)");
    o.topics = o.topics.split(",").filter(Boolean);
    o.globalTopics = new Set(o.globalTopics.split(",").filter(Boolean));
    return o;
}

function usage(msg) {
    process.stderr.write(`psdm_peer: ${msg}\nusage: node bench/peer/server.js --port P --bootstrap HOST:PORT ` +
                         "[--topics elog] [--path /bench_socketio/socket.io/] [--fetch-wait-ms 10] " +
                         "[--global-topics experiments] [--offset-reset earliest|latest]\n");
    process.exit(2);
}

function log(level, msg) {
    process.stderr.write(`${new Date().toISOString()} ${level} [PSDM-PEER] ${msg}\n`);
}

const opts = parseArgs(process.argv);
const stats = { connections: 0, joins: 0, records: 0, skipped: 0 };

// ---------------------------------------------------------------- Socket.IO
const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
});
const io = new Server(httpServer, {
    path: opts.path.replace(/\/$/, ""),
    transports: ["websocket"],  // the worker speaks only the websocket transport
    serveClient: false,
    cors: { origin: "*" },
});
const nsp = io.of(NAMESPACE);
nsp.on("connection", (socket) => {
    stats.connections++;
    // join ROOM [POSITIONS] [ack]: positions (a resume) are accepted and ignored; no replay.
    socket.on("join", (...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
        const room = args[0];
        if (typeof room !== "string" || room === "") {
            if (ack) ack({ error: "invalid room" });
            return;
        }
        socket.join(room);
        stats.joins++;
        if (ack) ack();
    });
    socket.on("leave", (...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
        if (typeof args[0] === "string") socket.leave(args[0]);
        if (ack) ack();
    });
});

// ---------------------------------------------------------------- Kafka
const kafka = new Kafka({
    clientId: "psdm_peer",
    brokers: opts.bootstrap.split(","),
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log: entry }) =>
        log(level <= logLevel.ERROR ? "error" : "warn", `kafkajs ${entry.namespace}: ${entry.message}`),
});
// A consumer group of its own per process, as the worker (every process gets every record).
const consumer = kafka.consumer({
    groupId: `psdm_peer-${process.pid}-${Date.now()}`,
    // The bench's broker is librdkafka's mock cluster (build/psdm_kafka_dev), which holds every
    // fetch that finds nothing new for the consumer's whole wait, even when a record arrives
    // meanwhile (a real broker answers as soon as there is data). kafkajs's default of 5 s
    // would then delay records by up to 5 s: the bench gives the peer the same short wait as
    // the worker (kafka.fetch.wait.max.ms), so that both figures show the server, not the mock.
    maxWaitTimeInMs: opts.fetchWaitMs,
});

function onRecord(topic, partition, message) {
    stats.records++;
    let info;
    try {
        info = JSON.parse(message.value.toString());
    } catch (e) {
        info = null;
    }
    if (!info || typeof info !== "object" || Array.isArray(info) || typeof info.experiment_name !== "string") {
        if (stats.skipped++ % 1000 === 0) log("warn", `skipped record ${topic}/${partition}/${message.offset}`);
        return;
    }
    info.psdm_ws_msg_type = topic;
    info.psdm_ws_msg_position = `${topic}/${partition}/${message.offset}`;
    nsp.to(info.experiment_name).emit("psdm_ws_msg", info);
    if (opts.globalTopics.has(topic)) nsp.to(GLOBAL_ROOM).emit("psdm_ws_msg", info);
}

async function startKafka() {
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
        const assigned = Object.values(e.payload.memberAssignment || {}).reduce((n, ps) => n + ps.length, 0);
        log("notice", `ready: ${assigned} partition(s) assigned`);
    });
    consumer.on(consumer.events.CRASH, (e) => log("error", `consumer crashed: ${e.payload.error}`));
    await consumer.connect();
    for (const topic of opts.topics) await consumer.subscribe({ topic, fromBeginning: opts.offsetReset === "earliest" });
    await consumer.run({ eachMessage: async ({ topic, partition, message }) => onRecord(topic, partition, message) });
    log("notice", `consuming ${opts.topics.join(",")} from ${opts.bootstrap}, fetch wait ${opts.fetchWaitMs} ms`);
}

// ---------------------------------------------------------------- start, stop
let stopping = false;
async function stop(signal) {
    if (stopping) return;
    stopping = true;
    log("notice", `${signal}: stopping (${stats.connections} connections, ${stats.joins} joins, ` +
                  `${stats.records} records, ${stats.skipped} skipped)`);
    const hard = setTimeout(() => process.exit(0), 3000);
    hard.unref();
    try {
        await consumer.disconnect();
    } catch (e) {
        log("warn", `consumer disconnect: ${e.message}`);
    }
    io.close();
    process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

// Backlog 4096: the load generator keeps up to 500 handshakes in flight (Node's default is 511).
httpServer.listen({ host: opts.host, port: opts.port, backlog: 4096 }, () => {
    log("notice", `listening on ${opts.host}:${opts.port}, path ${opts.path}, namespace ${NAMESPACE}`);
    startKafka().catch((e) => {
        log("error", `kafka: ${e.stack || e}`);
        process.exit(1);
    });
});
