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
 * No dependencies, no build step.
 */
var WebSocketConnection = (function () {
    "use strict";

    var NAMESPACE = "/psdm_ws";
    var EVENT = "psdm_ws_msg";
    var BACKOFF_MIN_MS = 1000;
    var BACKOFF_MAX_MS = 30000;

    var api = {};
    var active = null; // {close: function()} of the current connection, once connected

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

    function dispatch(msg) {
        console.log("Message from server; type=" + msg["psdm_ws_msg_type"]);
        document.querySelectorAll(".lgbk_socketio").forEach(function (target) {
            target.dispatchEvent(new CustomEvent(msg["psdm_ws_msg_type"], { detail: msg, bubbles: false }));
        });
    }

    function joined(room, ackArgs) {
        var answer = ackArgs && ackArgs[0];
        if (answer && answer.error) {
            console.log("Not allowed to join room " + room + " (" + answer.error + ")");
        } else {
            console.log("Joined room " + room);
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
        socket.on("connect", function () {
            console.log("Websocket connected to URL " + path);
            var room = roomName();
            socket.emit("join", room, function () {
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
        socket.on(EVENT, dispatch);
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

        var nextAck = 1;
        var acks = {};

        function onSocketIo(packet) {
            var prefix = packet.charAt(0) + NAMESPACE + ",";
            if (packet.indexOf(prefix) !== 0) return; // another namespace
            var body = packet.slice(prefix.length);
            if (packet.charAt(0) === "0") { // connected to the namespace
                attempt = 0;
                console.log("Websocket connected to URL " + path);
                var room = roomName();
                var id = nextAck++;
                acks[id] = function (args) { joined(room, args); };
                send("42" + NAMESPACE + "," + id + JSON.stringify(["join", room]));
            } else if (packet.charAt(0) === "2") { // event
                var event = JSON.parse(body);
                if (event[0] === EVENT) dispatch(event[1]);
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
