/*
 * websocket_client.js: live updates for PSDM web pages, a drop-in replacement for
 * flask_socket_util's client of the same name. Include it and call
 *
 *     WebSocketConnection.connect();
 *
 * It connects to <appRoot>_socketio/socket.io/ on the page's own host (appRoot is the
 * first path segment of the page, or the page's `app_root_path` variable), namespace
 * /psdm_ws, joins the room named by the page's `experiment_name` variable (or
 * "the_global_room"), and dispatches every message as
 *
 *     new CustomEvent(msg.psdm_ws_msg_type, {detail: msg, bubbles: false})
 *
 * to each element with class "lgbk_socketio". It disconnects when the page unloads.
 *
 * With a socket.io-client (2.x or 4.x) already loaded by the page (the `io` global) it
 * uses it; without one it speaks Engine.IO v4 itself over the browser's WebSocket, so
 * new pages need no socket.io.js at all. Either way a lost connection is retried with
 * exponential backoff and jitter (1 s doubling up to 30 s) and the room is joined again.
 *
 * Resume: each message carries its Kafka position, "psdm_ws_msg_position":
 * "TOPIC/PARTITION/OFFSET". Per room the client keeps, for each partition ("TOPIC/PARTITION"),
 * the next offset it has not seen, and every join sends them as the join's second argument
 * ({} the first time). The worker answers {"positions": {...}, "recovered": true|false,
 * "reason": "..."}. Recovered: what the page missed follows, then live messages; the page
 * has nothing to do. Not recovered (the worker no longer has, or cannot read, what the page
 * missed): nothing is replayed, and the client dispatches
 *
 *     new CustomEvent("psdm_ws_resync", {detail: {room: ROOM, reason: REASON}, bubbles: false})
 *
 * to each "lgbk_socketio" element: the page should reload its data. A message the page
 * already has (its offset is below the one kept for its partition, e.g. from a worker
 * that is behind) is dropped, not dispatched. Messages without a position are dispatched
 * as they come.
 *
 * No dependencies, no build step.
 */
var WebSocketConnection = (function () {
    "use strict";

    var NAMESPACE = "/psdm_ws";
    var EVENT = "psdm_ws_msg";
    var RESYNC_EVENT = "psdm_ws_resync";
    var POSITION = "psdm_ws_msg_position";
    var BACKOFF_MIN_MS = 1000;
    var BACKOFF_MAX_MS = 30000;

    var api = {};
    var active = null; // {close: function()} of the current connection, once connected
    // Room -> {"TOPIC/PARTITION": next offset not seen}. Kept across reconnects (not across
    // page loads: a new page loads its data afresh and joins with {}).
    var held = Object.create(null);

    // <appRoot>_socketio/socket.io/ ; the final trailing slash is very important.
    function socketPath() {
        var appRootPath = window.location.pathname.split("/").slice(0, 2).join("/");
        if (typeof app_root_path !== "undefined") {
            console.log("Overriding the socketio root path with app_root_path " + app_root_path);
            appRootPath = app_root_path;
        }
        return appRootPath + "_socketio/socket.io/";
    }

    function roomName() {
        return typeof experiment_name !== "undefined" ? experiment_name : "the_global_room";
    }

    function dispatchAll(type, detail) {
        document.querySelectorAll(".lgbk_socketio").forEach(function (target) {
            target.dispatchEvent(new CustomEvent(type, { detail: detail, bubbles: false }));
        });
    }

    // The positions kept for `room`, created empty on first use.
    function positionsOf(room) {
        if (!(room in held)) held[room] = Object.create(null); // no prototype: any key is data
        return held[room];
    }

    // An offset as the worker sends it: an integer 0 .. 2^53 - 1; else null.
    function offsetOf(value) {
        return typeof value === "number" && value >= 0 && value <= 9007199254740991 && Math.floor(value) === value
            ? value : null;
    }

    // "TOPIC/PARTITION/OFFSET" -> {key: "TOPIC/PARTITION", offset: N}; null if absent or
    // malformed (Kafka topic names have no '/': split from the right).
    function positionOf(msg) {
        var m = typeof msg[POSITION] === "string" && /^([^\/]+\/\d+)\/(\d+)$/.exec(msg[POSITION]);
        var offset = m ? offsetOf(Number(m[2])) : null;
        return offset === null ? null : { key: m[1], offset: offset };
    }

    // A message of the room joined in `room`: dispatched unless the page already has it.
    function received(room, msg) {
        if (!msg || typeof msg !== "object") return;
        var at = positionOf(msg);
        if (at) {
            var positions = positionsOf(room);
            if (at.key in positions && at.offset < positions[at.key]) {
                console.log("Dropped a message already received; position=" + msg[POSITION]);
                return;
            }
            positions[at.key] = at.offset + 1;
        }
        console.log("Message from server; type=" + msg["psdm_ws_msg_type"]);
        dispatchAll(msg["psdm_ws_msg_type"], msg);
    }

    // What a join sends besides the room: a copy of the positions kept for it.
    function joinPositions(room) {
        var positions = positionsOf(room), copy = {};
        Object.keys(positions).forEach(function (key) { copy[key] = positions[key]; });
        return copy;
    }

    // The join's answer: a refusal ({error}), a resume's ({positions, recovered, reason}),
    // or an old worker's [] (no resume: nothing to do).
    function joined(room, ackArgs) {
        var answer = ackArgs && ackArgs[0];
        if (answer && answer.error) {
            console.log("Not allowed to join room " + room + " (" + answer.error + ")");
            return;
        }
        console.log("Joined room " + room);
        if (!answer || typeof answer !== "object" || !answer.positions || typeof answer.positions !== "object") return;
        var positions = positionsOf(room);
        Object.keys(answer.positions).forEach(function (key) {
            var offset = offsetOf(answer.positions[key]);
            if (offset === null) return;
            var mine = key in positions ? positions[key] : null;
            // Recovered: the replay follows and moves the partitions the page holds; the
            // others start where the worker stands. Not recovered: whatever is further on.
            if (mine === null || (answer.recovered !== true && offset > mine)) positions[key] = offset;
        });
        if (answer.recovered !== true) {
            // The page reloads its data. A topic the worker names no partition of, while it names
            // others (it no longer consumes that topic), is forgotten, else every later join
            // would name it and be refused again. (A worker that knows no position yet names
            // none: then nothing is forgotten, and what the page has is still dropped.)
            var topics = {};
            Object.keys(answer.positions).forEach(function (key) {
                topics[key.slice(0, key.lastIndexOf("/"))] = true;
            });
            if (Object.keys(topics).length > 0) {
                Object.keys(positions).forEach(function (key) {
                    if (!topics[key.slice(0, key.lastIndexOf("/"))]) delete positions[key];
                });
            }
            var reason = typeof answer.reason === "string" ? answer.reason : "not recovered";
            console.log("Resync room " + room + ": " + reason);
            dispatchAll(RESYNC_EVENT, { room: room, reason: reason });
        }
    }

    // Delay before reconnect attempt n (0-based): doubling, capped, with +-50% jitter.
    function backoff(attempt) {
        var base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
        return Math.round(base * (0.5 + Math.random()));
    }

    // ---------------------------------------------------------------- with socket.io-client

    function connectWithSocketIo(path) {
        var scheme = window.location.protocol === "https:" ? "wss" : "ws";
        console.log("Connecting to socketIO using " + path + " using " + scheme);
        var socket = io.connect(scheme + "://" + window.location.host + NAMESPACE, {
            transports: ["websocket"],
            path: path,
            reconnection: true,
            reconnectionDelay: BACKOFF_MIN_MS,
            reconnectionDelayMax: BACKOFF_MAX_MS,
            randomizationFactor: 0.5
        });
        var room = roomName();
        socket.on("connect", function () {
            console.log("Websocket connected to URL " + path);
            socket.emit("join", room, joinPositions(room), function () {
                joined(room, Array.prototype.slice.call(arguments));
            });
        });
        socket.on("connect_error", function (err) {
            console.log("Websocket failed to connect to URL " + path);
            console.log(err);
        });
        socket.on("disconnect", function () {
            console.log("Disconnecting from websockets at " + path);
        });
        socket.on(EVENT, function (msg) { received(room, msg); });
        return { close: function () { socket.disconnect(); } };
    }

    // ---------------------------------------------------------------- native Engine.IO v4

    function connectNative(path) {
        var scheme = window.location.protocol === "https:" ? "wss" : "ws";
        var url = scheme + "://" + window.location.host + path + "?EIO=4&transport=websocket";
        var attempt = 0;
        var stopped = false;
        var ws = null;
        var watchdog = null;
        var retry = null;
        var deadAfterMs = 45000; // pingInterval + pingTimeout, from the open packet

        function send(text) {
            if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
        }

        // No ping from the server for a whole interval + timeout: the connection is dead.
        function armWatchdog() {
            clearTimeout(watchdog);
            watchdog = setTimeout(function () {
                console.log("Websocket heartbeat lost; reconnecting");
                if (ws) ws.close();
            }, deadAfterMs);
        }

        function onPacket(data) {
            var type = data.charAt(0);
            if (type === "0") { // open
                var open = JSON.parse(data.slice(1));
                deadAfterMs = open.pingInterval + open.pingTimeout;
                armWatchdog();
                send("40" + NAMESPACE + ",");
            } else if (type === "2") { // ping
                armWatchdog();
                send("3");
            } else if (type === "1") { // close
                ws.close();
            } else if (type === "4") {
                onSocketIo(data.slice(1));
            }
        }

        var room = roomName();
        var nextAck = 1;
        var acks = {}; // ack id -> callback, for this connection

        function onSocketIo(packet) {
            var prefix = packet.charAt(0) + NAMESPACE + ",";
            if (packet.indexOf(prefix) !== 0) return; // another namespace
            var body = packet.slice(prefix.length);
            if (packet.charAt(0) === "0") { // connected to the namespace
                attempt = 0;
                console.log("Websocket connected to URL " + path);
                var id = nextAck++;
                acks[id] = function (args) { joined(room, args); };
                send("42" + NAMESPACE + "," + id + JSON.stringify(["join", room, joinPositions(room)]));
            } else if (packet.charAt(0) === "2") { // event
                var event = JSON.parse(body);
                if (event[0] === EVENT) received(room, event[1]);
            } else if (packet.charAt(0) === "3") { // ack
                var digits = body.match(/^\d+/);
                if (digits && acks[digits[0]]) {
                    var cb = acks[digits[0]];
                    delete acks[digits[0]];
                    cb(JSON.parse(body.slice(digits[0].length)));
                }
            } else if (packet.charAt(0) === "4") { // connect error
                console.log("Websocket failed to connect to URL " + path);
                console.log(body);
            }
        }

        function open() {
            console.log("Connecting to socketIO using " + path + " using " + scheme);
            acks = {}; // a lost connection's joins are never answered
            ws = new WebSocket(url);
            ws.onmessage = function (e) {
                if (typeof e.data === "string") onPacket(e.data);
            };
            ws.onclose = function () {
                clearTimeout(watchdog);
                console.log("Disconnecting from websockets at " + path);
                if (stopped) return;
                var delay = backoff(attempt++);
                console.log("Reconnecting in " + delay + " ms");
                retry = setTimeout(open, delay);
            };
            ws.onerror = function () {
                console.log("Websocket failed to connect to URL " + path);
            };
        }

        open();
        return {
            close: function () {
                stopped = true;
                clearTimeout(retry);
                clearTimeout(watchdog);
                send("41" + NAMESPACE + ",");
                if (ws) ws.close();
            }
        };
    }

    // ---------------------------------------------------------------- the public API

    api.connect = function () {
        if (active) return;
        var path = socketPath();
        active = typeof io !== "undefined" ? connectWithSocketIo(path) : connectNative(path);
        // "unload" as the old client did; "pagehide" where browsers no longer fire it.
        var leave = function () {
            if (!active) return;
            console.log("Disconnecting from websocket");
            active.close();
            active = null;
        };
        window.addEventListener("unload", leave);
        window.addEventListener("pagehide", leave);
    };

    return api;
})();
