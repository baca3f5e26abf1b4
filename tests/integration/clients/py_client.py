#!/usr/bin/python3
"""A real python-socketio client (Debian's python3-socketio) driven by the tests.

  py_client.py --url http://127.0.0.1:PORT --path /app_socketio/socket.io/ [--ns /psdm_ws]
               [--join ROOM[,ROOM...]] [--count N] [--timeout-ms MS] [--resume]

Prints the same JSON lines as sio_client.js. --resume as there: keep positions, send them with
every join, reconnect (python-socketio's own reconnection) after a lost connection."""
import argparse
import json
import sys
import threading

import socketio


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--path", default="/socket.io/")
    ap.add_argument("--ns", default="/psdm_ws")
    ap.add_argument("--join", default="")
    ap.add_argument("--count", type=int, default=-1)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    positions = {}  # --resume: partition key -> next offset

    def adopt(given, everything):
        for key, nxt in (given or {}).items():
            if key not in positions or (everything and nxt > positions[key]):
                positions[key] = nxt
    rooms = [r for r in a.join.split(",") if r]
    done = threading.Event()
    received = [0]
    sio = socketio.Client(reconnection=a.resume, reconnection_delay=0.5, reconnection_delay_max=2)

    @sio.on("connect", namespace=a.ns)
    def on_connect():
        out({"ev": "connect", "id": sio.get_sid(a.ns)})
        pending = [len(rooms)]
        if not rooms:
            out({"ev": "ready"})
        for room in rooms:
            def acked(*args, room=room):
                out({"ev": "ack", "room": room, "args": list(args)})
                answer = args[0] if args else None
                if a.resume and isinstance(answer, dict) and "recovered" in answer:
                    adopt(answer.get("positions"), not answer["recovered"])
                    if not answer["recovered"]:
                        out({"ev": "resync", "room": room, "reason": answer.get("reason")})
                pending[0] -= 1
                if pending[0] == 0:
                    out({"ev": "ready"})
            data = (room, dict(positions)) if a.resume else room
            sio.emit("join", data, namespace=a.ns, callback=acked)

    @sio.on("psdm_ws_msg", namespace=a.ns)
    def on_msg(data):
        out({"ev": "msg", "data": data})
        at = data.get("psdm_ws_msg_position") if isinstance(data, dict) else None
        if a.resume and isinstance(at, str):
            key, _, offset = at.rpartition("/")
            positions[key] = max(positions.get(key, 0), int(offset) + 1)
        received[0] += 1
        if received[0] == a.count:
            out({"ev": "done", "count": received[0]})
            done.set()

    @sio.on("disconnect", namespace=a.ns)
    def on_disconnect():
        out({"ev": "disconnect", "reason": ""})

    try:
        sio.connect(a.url, socketio_path=a.path, namespaces=[a.ns], transports=["websocket"])
    except Exception as e:  # noqa: BLE001 - report any connection failure as an event
        out({"ev": "connect_error", "message": str(e)})
        return 1
    ok = done.wait(a.timeout_ms / 1000.0)
    if not ok:
        out({"ev": "timeout", "count": received[0]})
    sio.disconnect()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
