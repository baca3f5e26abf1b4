#!/usr/bin/python3
"""A small stand-in for the site's web application answering the worker's http authz
provider, the way the Flask route of README.md ("Authorization") does with flask_authnz:

    @app.route("/ws/authz/<experiment_name>")
    @security.authentication_required          # no user header: 403
    @security.authorization_required("read")   # not allowed: 403
    def ws_authz(experiment_name): return "", 204

  authz_app.py --port-file PATH --policy PATH

The user comes from the REMOTE-USER header (flask_authnz's default), "user@realm" cut
to "user". The policy is a JSON file, read again on every request so a test can change
it by replacing the file:

    {"allow": {"ROOM": ["user", ...]},   ROOM "*" = every room
     "status": {"ROOM": 500},            answer this status instead
     "delay_ms": {"ROOM": 3000}}         answer this late

Each request is printed as one JSON line on stdout ({"user":..,"room":..,"status":..})
before it is answered, so the test can count the requests the worker made."""
import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/ws/authz/"
lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--policy", required=True)
    a = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the worker reuses its connections

        def do_GET(self):  # noqa: N802 - http.server's name
            path = urllib.parse.urlsplit(self.path).path
            if not path.startswith(PREFIX):
                return self.answer(None, None, 404)
            room = urllib.parse.unquote(path[len(PREFIX):])
            user = self.headers.get(os.environ.get("FLASK_AUTHNZ_USER_HEADER", "REMOTE-USER"))
            if user and "@" in user:
                user = user.split("@")[0]
            with open(a.policy) as f:
                policy = json.load(f)
            delay = policy.get("delay_ms", {}).get(room, 0)
            status = policy.get("status", {}).get(room)
            if status is None:
                allowed = policy.get("allow", {})
                ok = user and (user in allowed.get(room, []) or user in allowed.get("*", []))
                status = 204 if ok else 403
            self.answer(user, room, status, delay)

        def answer(self, user, room, status, delay=0):
            with lock:
                sys.stdout.write(json.dumps({"user": user, "room": room, "status": status}) + "\n")
                sys.stdout.flush()
            if delay:
                time.sleep(delay / 1000.0)  # the slow application under test
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the worker gave up waiting (its timeout) and closed the connection

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
