"""Room authorization: the file and http providers, revocation, and that no message of a
room ever reaches a client that may not read it, through the worker and through Apache.

Clients with a chosen identity reach the worker without Apache through `HandedOver`: it
hands itself over on the worker's handoff socket exactly as mod_psdm_socket relays a TLS
connection (a kind-2 request of handoff/handoff_proto.h), so the worker sees the user and
groups the test chose, as it would see those Apache authenticated. Direct `listen`
connections are anonymous."""
import base64
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import BUILD, REPO, HarnessError
import stack
from rawws import RawEio
from test_worker_protocol import RawWs, upgrade_head, ws_frame

PATH = "/lgbk_socketio/socket.io/"
APP = os.path.join(REPO, "tests", "integration", "apps", "authz_app.py")
FORBIDDEN = lambda room: [{"error": "forbidden", "room": room}]  # noqa: E731 - the join ack of a refusal


# -------------------------------------------------------------------- helpers

class HandedOver:
    """A Socket.IO client (Engine.IO v4, namespace /psdm_ws) handed over to the worker on
    its handoff socket with the identity the test chooses. A reader thread answers pings
    and collects acks and messages."""

    def __init__(self, sock_path, user, groups=(), timeout=20, host="127.0.0.1"):
        self.timeout = timeout
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(sock_path)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        fields = ([(1, user)] + [(2, g) for g in groups] +
                  [(4, host), (5, PATH + "?EIO=4&transport=websocket"), (6, key), (7, "13")])
        body = b"".join(struct.pack(">BH", tag, len(v.encode())) + v.encode() for tag, v in fields)
        # Version 2, kind relay: the worker answers in HTTP on this same connection.
        self.s.sendall(b"PSDM" + bytes([2, 2]) + struct.pack(">HIH", 0, len(body), len(fields)) + body)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.s.settimeout(None)
        self.events = queue.Queue()
        self.messages = []
        self.close_code = None
        self._send_lock = threading.Lock()
        self._next_ack = 0
        self._acks = {}
        threading.Thread(target=self._reader, daemon=True).start()
        self._send("40/psdm_ws,")
        self._wait(lambda e: e[0] == "connect", "namespace connect")

    # -- wire

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("worker closed the connection")
        self.buf += data

    def _read(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def _send(self, text, opcode=1):
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        with self._send_lock:
            self.s.sendall(head + mask + masked)

    def _reader(self):
        try:
            while True:
                op, payload = self._frame()
                if op == 8:
                    self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self.events.put(("close", self.close_code))
                    return
                if op == 9:
                    self._send(payload, opcode=10)
                    continue
                text = payload.decode()
                if text == "2":
                    self._send("3")
                elif text.startswith("40/psdm_ws,"):
                    self.events.put(("connect", text))
                elif text.startswith("43/psdm_ws,"):
                    m = re.match(r"43/psdm_ws,(\d+)(.*)$", text, re.S)
                    self.events.put(("ack", int(m.group(1)), json.loads(m.group(2))))
                elif text.startswith("42/psdm_ws,"):
                    name, data = json.loads(text[len("42/psdm_ws,"):])
                    if name == "psdm_ws_msg":
                        self.messages.append(data)
                        self.events.put(("msg", data))
        except (OSError, EOFError, ValueError) as e:
            self.events.put(("eof", str(e)))

    def _wait(self, pred, what, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"client: no {what} within {timeout or self.timeout} s")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if e[0] == "ack":
                self._acks[e[1]] = e[2]
            if pred(e):
                return e
            if e[0] in ("eof", "close"):
                raise HarnessError(f"client: connection ended ({e}) while waiting for {what}")

    # -- Socket.IO

    def join_async(self, room):
        """Sends a join with an ack id; returns the id (for ack())."""
        self._next_ack += 1
        self._send(f'42/psdm_ws,{self._next_ack}["join",{json.dumps(room)}]')
        return self._next_ack

    def ack(self, ack_id, timeout=None):
        if ack_id not in self._acks:
            self._wait(lambda e: e[0] == "ack" and e[1] == ack_id, f"ack {ack_id}", timeout)
        return self._acks.pop(ack_id)

    def join(self, room):
        """Joins and returns the ack's arguments: [] or [{"error": ..., "room": ...}]."""
        return self.ack(self.join_async(room))

    def wait_seq(self, seq, timeout=60):
        """Waits for the message whose "seq" is `seq` (messages before it are kept)."""
        if not any(m.get("seq") == seq for m in self.messages):
            self._wait(lambda e: e[0] == "msg" and e[1].get("seq") == seq, f"message {seq!r}", timeout)

    def seqs(self, room):
        return [m["seq"] for m in self.messages if m.get("experiment_name") == room]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def msg(room, seq):
    return json.dumps({"experiment_name": room, "seq": seq})


def handoff_path(harness):
    return os.path.join(harness.sock_dir, "handoff.sock")


def start_worker(harness, broker, authz, peers=None, **extra):
    """The worker on topic elog; by default this test process may hand connections over."""
    extra.setdefault("topics", "elog")
    return stack.start_worker(harness, broker, handoff_path(harness), authz=authz,
                              peers=peers or str(os.geteuid()), **extra)


def write_file(path, text):
    """Replaces the file in one step (a reader never sees half of it)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def reload(worker, count):
    """SIGHUP, then waits for the count-th reload line of the worker (success or failure)."""
    os.kill(worker.proc.pid, signal.SIGHUP)
    rx = re.compile(r"reload \(SIGHUP\)")
    worker.harness.wait_for(worker.proc, lambda: len(rx.findall(worker.log_text())) >= count,
                            f"reload #{count} logged", 10)


class App:
    """tests/integration/apps/authz_app.py, the stand-in for the site's Flask application."""

    def __init__(self, harness, policy):
        self.policy_path = os.path.join(harness.run_dir, "policy.json")
        self.set_policy(policy)
        port_file = os.path.join(harness.run_dir, "app.port")
        self.proc = harness.spawn("authz-app", ["/usr/bin/python3", APP, "--port-file", port_file,
                                                "--policy", self.policy_path])
        harness.wait_for(self.proc, lambda: os.path.exists(port_file), "writing its port", 10)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}/ws/authz/{{room}}"
        self.harness = harness

    def set_policy(self, policy):
        write_file(self.policy_path, json.dumps(policy))

    def requests(self, user=None, room=None):
        out = []
        with open(self.proc.log) as f:
            for line in f:
                if line.startswith("{") and line.endswith("\n"):  # a whole line
                    r = json.loads(line)
                    if (user is None or r["user"] == user) and (room is None or r["room"] == room):
                        out.append(r)
        return out

    def wait_requests(self, n, user=None, room=None, timeout=10):
        self.harness.wait_for(self.proc, lambda: len(self.requests(user, room)) >= n,
                              f"{n} request(s) for user {user} room {room}", timeout)


# -------------------------------------------------------------------- file provider, through the worker

def test_no_leak_over_1000_messages_and_none_after_a_reload_revokes(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "R    alice\nS    alice mallory\n")
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, f"file:{acl}")
    sock = handoff_path(harness)
    alice, mallory = HandedOver(sock, "alice"), HandedOver(sock, "mallory")
    assert alice.join("R") == []
    assert mallory.join("R") == FORBIDDEN("R")
    assert alice.join("S") == [] and mallory.join("S") == []
    worker.wait_log(r"client \d+: user 'mallory' may not join room 'R' \(file: no line of \S+rooms.acl grants it\)")

    # 1000 messages to R, then one to S: both clients get S only after whatever of R was
    # theirs (one partition, in order; one fan-out loop), so mallory's S proves she got no R.
    broker.produce("elog", [msg("R", i) for i in range(1000)] + [msg("S", "s1")])
    alice.wait_seq("s1")
    mallory.wait_seq("s1")
    assert alice.seqs("R") == list(range(1000))
    assert mallory.seqs("R") == []

    # Revoke alice's R: after the reload she gets none of R, and keeps her connection.
    write_file(acl, "S    alice mallory\n")
    reload(worker, 1)
    worker.wait_log(r"client \d+: user 'alice' removed from room 'R' \(file: no line of \S+ grants it\)")
    broker.produce("elog", [msg("R", 1000 + i) for i in range(1000)] + [msg("S", "s2")])
    alice.wait_seq("s2")
    mallory.wait_seq("s2")
    assert alice.seqs("R") == list(range(1000))
    assert mallory.seqs("R") == []
    assert alice.close_code is None and mallory.close_code is None
    # A new join to R is refused as well.
    assert alice.join("R") == FORBIDDEN("R")


def test_file_acl_wildcards_groups_and_anonymous(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "# experiments by instrument group\n"
                    "xpp*              @xpp-data   # the instrument's data group\n"
                    "cxi*17            carol\n"
                    "the_global_room   *\n"
                    "public-*          %anonymous\n")
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, f"file:{acl}")
    sock = handoff_path(harness)
    erin = HandedOver(sock, "erin", groups=["ps-data", "xpp-data"])
    carol = HandedOver(sock, "carol", groups=["ps-data"])
    assert erin.join("xpptut15") == [] and erin.join("xpp12345") == []
    assert erin.join("cxi00017") == FORBIDDEN("cxi00017")
    assert carol.join("cxi00017") == [] and carol.join("cxi99917") == []
    assert carol.join("cxi00018") == FORBIDDEN("cxi00018")
    assert carol.join("xpptut15") == FORBIDDEN("xpptut15")
    assert erin.join("the_global_room") == [] and carol.join("the_global_room") == []
    # Direct connections are anonymous: '*' is not for them, %anonymous is.
    raw = RawEio(worker.url)
    raw.connect_ns()
    raw.send('42/psdm_ws,1["join","the_global_room"]')
    assert raw.next_text() == '43/psdm_ws,1[{"error":"forbidden","room":"the_global_room"}]'
    raw.send('42/psdm_ws,2["join","public-news"]')
    assert raw.next_text() == "43/psdm_ws,2[]"
    raw.close()
    worker.wait_log(r"user '' may not join room 'the_global_room' \(file: ")
    # Delivery follows the grants.
    broker.produce("elog", [msg("xpptut15", 1), msg("cxi00017", 2), msg("xpptut15", "end"), msg("cxi00017", "end")])
    erin.wait_seq("end")
    carol.wait_seq("end")
    assert [m["experiment_name"] for m in erin.messages] == ["xpptut15", "xpptut15"]
    assert [m["experiment_name"] for m in carol.messages] == ["cxi00017", "cxi00017"]


def test_acl_syntax_error_stops_the_start_naming_the_line(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "xpptut15 alice\n\nxpp* @\n")
    conf = os.path.join(harness.run_dir, "w.conf")
    write_file(conf, f"listen = 127.0.0.1:0\ntopics = elog\nauthz = file:{acl}\n")
    r = subprocess.run([os.path.join(BUILD, "psdm_socketd"), "-c", conf], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert f"authz: file provider: {acl}:3: '@' must be followed by a group name" in r.stderr


def test_sighup_with_a_broken_acl_keeps_the_old_rules_and_connections(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "R alice\n")
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, f"file:{acl}")
    sock = handoff_path(harness)
    alice, bob = HandedOver(sock, "alice"), HandedOver(sock, "bob")
    assert alice.join("R") == []
    write_file(acl, "R alice bob\nbroken-line\n")
    reload(worker, 1)
    worker.wait_log(r"reload \(SIGHUP\) failed, the previous rules stay in force: \S+rooms.acl:2: room pattern "
                    r"'broken-line' names nobody")
    assert bob.join("R") == FORBIDDEN("R")  # the old rules
    broker.produce("elog", [msg("R", 1)])
    alice.wait_seq(1)
    # Fixed: bob may join now, alice stays.
    write_file(acl, "R alice bob\n")
    reload(worker, 2)
    worker.wait_log(r"reload \(SIGHUP\): re-checking 1 membership\(s\) of 2 client\(s\)")
    assert bob.join("R") == []
    broker.produce("elog", [msg("R", 2)])
    alice.wait_seq(2)
    bob.wait_seq(2)
    assert alice.seqs("R") == [1, 2] and bob.seqs("R") == [2]
    assert "removed from" not in worker.log_text()


# -------------------------------------------------------------------- http provider

def test_http_allow_deny_and_one_request_for_many_joins(harness):
    app = App(harness, {"allow": {"R": ["alice"], "D": ["alice"]}, "delay_ms": {"D": 300}})
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, app.url)
    sock = handoff_path(harness)
    alices = [HandedOver(sock, "alice") for _ in range(5)]
    bob = HandedOver(sock, "bob", groups=["xpp-data"])
    assert alices[0].join("R") == []
    assert bob.join("R") == FORBIDDEN("R")
    for a in alices:  # answered from the cache
        assert a.join("R") == []
    assert bob.join("R") == FORBIDDEN("R")  # denials are cached too (authz_deny_ttl_ms)
    assert [(r["user"], r["status"]) for r in app.requests(room="R")] == [("alice", 204), ("bob", 403)]
    worker.wait_log(r"client \d+: user 'bob' may not join room 'R' \(http: HTTP 403\)")
    # Five joins asked at once, answered slowly: one request.
    ids = [a.join_async("D") for a in alices]
    assert [a.ack(i) for a, i in zip(alices, ids)] == [[]] * 5
    assert len(app.requests(room="D")) == 1
    # Messages follow the answers.
    broker.produce("elog", [msg("R", 1), msg("R", 2)])
    for a in alices:
        a.wait_seq(2)
        assert a.seqs("R") == [1, 2]
    assert worker.proc.stop() == 0
    m = re.search(r"http: (\d+) allowed, (\d+) denied, (\d+) failed, (\d+) cache hit\(s\), (\d+) request\(s\)",
                  worker.log_text())
    assert m and tuple(int(x) for x in m.groups()) == (11, 2, 0, 6, 3)
    assert bob.seqs("R") == []


def test_http_500_and_timeout_are_refused_logged_and_not_cached(harness):
    app = App(harness, {"allow": {"R": ["alice"]}, "status": {"R5": 500}, "delay_ms": {"SLOW": 3000}})
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, app.url, authz_timeout_ms=400)
    sock = handoff_path(harness)
    alice, other = HandedOver(sock, "alice"), HandedOver(sock, "alice")
    assert alice.join("R5") == FORBIDDEN("R5")
    worker.wait_log(r"GET http://127\.0\.0\.1:\d+/ws/authz/R5: HTTP 500 \(expected 2xx, 401, 403 or 404\); "
                    r"refusing user 'alice' room 'R5'")
    worker.wait_log(r"user 'alice' may not join room 'R5' \(http: no answer: HTTP 500")
    assert alice.join("R5") == FORBIDDEN("R5")
    assert len(app.requests(room="R5")) == 2  # a failure is not cached: asked again

    # A slow application: the join is refused after authz_timeout_ms, and the event loop
    # serves everyone else meanwhile.
    started = time.monotonic()
    slow = alice.join_async("SLOW")
    app.wait_requests(1, room="SLOW")
    assert other.join("R") == []  # answered while SLOW is pending
    assert alice.ack(slow) == FORBIDDEN("SLOW")
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0, elapsed
    worker.wait_log(r"GET http://127\.0\.0\.1:\d+/ws/authz/SLOW: no answer within 400 ms \(authz_timeout_ms\)")
    broker.produce("elog", [msg("SLOW", 1), msg("R5", 2), msg("R", 3)])
    other.wait_seq(3)
    assert alice.messages == []


def test_http_cache_expiry_and_revocation(harness):
    app = App(harness, {"allow": {"R": ["alice", "bob"], "S": ["alice"]}})
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, app.url, authz_allow_ttl_ms=2000, authz_deny_ttl_ms=0)
    sock = handoff_path(harness)
    alice, bob = HandedOver(sock, "alice"), HandedOver(sock, "bob")
    first = time.monotonic()
    assert alice.join("R") == [] and alice.join("S") == [] and bob.join("R") == []
    assert len(app.requests("alice", "R")) == 1
    if time.monotonic() - first < 1.5:  # still within the allow TTL: from the cache
        assert HandedOver(sock, "alice").join("R") == []
        assert len(app.requests("alice", "R")) == 1
    # Past the TTL the worker asks again by itself (the membership is re-checked).
    app.wait_requests(2, "alice", "R", timeout=10)
    assert time.monotonic() - first >= 2.0

    # The application revokes alice: she is removed within 1.25 TTL and gets no more of R.
    app.set_policy({"allow": {"R": ["bob"], "S": ["alice"]}})
    revoked = time.monotonic()
    worker.wait_log(r"client \d+: user 'alice' removed from room 'R' \(http: HTTP 403\)", timeout=10)
    assert time.monotonic() - revoked < 2.5 + 1.0
    broker.produce("elog", [msg("R", 1), msg("S", "end")])
    alice.wait_seq("end")
    bob.wait_seq(1)
    assert alice.seqs("R") == [] and bob.seqs("R") == [1]


# -------------------------------------------------------------------- through Apache

LOCATIONS = ('<Location "/alice_socketio/">\n  SetHandler psdm-socket\n  SetEnv WEBAUTH_USER alice@SLAC.STANFORD.EDU\n'
             '  SetEnv WEBAUTH_GROUPS "ps-data, xpp-data"\n</Location>\n'
             '<Location "/mallory_socketio/">\n  SetHandler psdm-socket\n  SetEnv WEBAUTH_USER mallory\n'
             '  SetEnv WEBAUTH_GROUPS ps-data\n</Location>\n')


def start_with_apache(harness, authz):
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, authz, peers=stack.peer())
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{handoff_path(harness)}\nPsdmSocketTimeout 2\n"
                                "PsdmSocketUser env:WEBAUTH_USER\nPsdmSocketGroups env:WEBAUTH_GROUPS\n"
                                "PsdmSocketStripRealm SLAC.STANFORD.EDU\n" + LOCATIONS)
    return broker, worker, httpd


def wait_seq(client, seq, timeout=60):
    while True:
        e = client.wait("msg", timeout)
        if e["data"]["seq"] == seq:
            return


def test_no_leak_through_apache_with_groups_and_after_reload(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "R    @xpp-data\nS    @ps-data\n")
    broker, worker, httpd = start_with_apache(harness, f"file:{acl}")
    alice = harness.start_client("node4", httpd.url, path="/alice_socketio/socket.io/", join=["R", "S"],
                                 name="client-alice")
    mallory = harness.start_client("node4", httpd.url, path="/mallory_socketio/socket.io/", join=["R", "S"],
                                   name="client-mallory")
    alice.wait("ready")
    mallory.wait("ready")
    assert {e["room"]: e["args"] for e in mallory.events if e["ev"] == "ack"} == {"R": FORBIDDEN("R"), "S": []}
    assert all(e["args"] == [] for e in alice.events if e["ev"] == "ack")
    worker.wait_log(r"user 'mallory' may not join room 'R' \(file: ")

    broker.produce("elog", [msg("R", i) for i in range(1000)] + [msg("S", "s1")])
    wait_seq(alice, "s1")
    wait_seq(mallory, "s1")
    assert [m["seq"] for m in alice.messages() if m["experiment_name"] == "R"] == list(range(1000))
    assert [m for m in mallory.messages() if m["experiment_name"] == "R"] == []

    write_file(acl, "R    @nobody\nS    @ps-data\n")
    reload(worker, 1)
    worker.wait_log(r"user 'alice' removed from room 'R' \(file: ")
    broker.produce("elog", [msg("R", 1000 + i) for i in range(100)] + [msg("S", "s2")])
    wait_seq(alice, "s2")
    wait_seq(mallory, "s2")
    assert [m["seq"] for m in alice.messages() if m["experiment_name"] == "R"] == list(range(1000))
    assert [m for m in mallory.messages() if m["experiment_name"] == "R"] == []
    assert not [e for c in (alice, mallory) for e in c.events if e["ev"] == "disconnect"]


@pytest.mark.parametrize("provider", ["file", "http"])
def test_the_decision_uses_the_identity_apache_authenticated(harness, provider):
    # The client claims to be bob every way it can; Apache authenticated alice.
    if provider == "file":
        acl = os.path.join(harness.run_dir, "rooms.acl")
        write_file(acl, "R bob\nA alice\n")
        authz = f"file:{acl}"
    else:
        app = App(harness, {"allow": {"R": ["bob"], "A": ["alice"]}})
        authz = app.url
    broker, worker, httpd = start_with_apache(harness, authz)
    raw = RawEio(httpd.url, path="/alice_socketio/socket.io/",
                 headers=["REMOTE-USER: bob", "REMOTE_USER: bob", "X-Psdm-User: bob", "X-Remote-User: bob"])
    raw.connect_ns()
    raw.send('42/psdm_ws,1["join","R"]')
    assert raw.next_text() == '43/psdm_ws,1[{"error":"forbidden","room":"R"}]'
    raw.send('42/psdm_ws,2["join","A"]')
    assert raw.next_text() == "43/psdm_ws,2[]"
    raw.close()
    worker.wait_log(rf"user 'alice' may not join room 'R' \({provider}: ")
    if provider == "http":
        assert [(r["user"], r["room"]) for r in app.requests()] == [("alice", "R"), ("alice", "A")]


# -------------------------------------------------------------------- room names and the URL asked

class PathApp:
    """An authz application that allows (200) every path but those in `deny` (403), and
    records the request targets exactly as they arrive: if the worker asked any other path
    than the room's own, the join would be allowed."""

    def __init__(self, deny):
        self.paths = []
        paths, denied = self.paths, set(deny)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                paths.append(self.path)
                self.send_response(403 if self.path in denied else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_http_provider_asks_exactly_the_path_of_the_room(harness):
    rooms = [  # (room, the path asked, or None: refused by the room-name rule, never asked)
        ("..", None), (".", None), ("a/b", None), ("../x", None), ("/", None),
        ("%2e%2e", "/ws/authz/%252e%252e"), ("a?b", "/ws/authz/a%3Fb"), ("a#b", "/ws/authz/a%23b"),
        ("...", "/ws/authz/%2E%2E%2E"), ("caf\u00e9 x", "/ws/authz/caf%C3%A9%20x"),
    ]
    app = PathApp(deny=[path for _, path in rooms if path])
    try:
        broker = harness.start_broker(topics=["elog"])
        worker = start_worker(harness, broker, app.base + "/ws/authz/{room}")
        raw = RawEio(worker.url)
        raw.connect_ns()
        for i, (room, path) in enumerate(rooms):
            raw.send(f'42/psdm_ws,{i}["join",{json.dumps(room)}]')
            expected = [{"error": "invalid room"}] if path is None else FORBIDDEN(room)
            assert json.loads(raw.next_text()[len(f"43/psdm_ws,{i}"):]) == expected, room
        raw.close()
        assert app.paths == [path for _, path in rooms if path]
        worker.wait_log(r"user '' may not join room '%2e%2e' \(http: HTTP 403\)")
    finally:
        app.close()


def test_http_provider_encodes_a_dot_segment_user(harness):
    app = PathApp(deny=["/ws/%2E%2E/rooms/R", "/ws/%2E/rooms/R", "/ws/a%2Fb/rooms/R"])
    try:
        broker = harness.start_broker(topics=["elog"])
        worker = start_worker(harness, broker, app.base + "/ws/{user}/rooms/{room}")
        sock = handoff_path(harness)
        for user in ["..", ".", "a/b"]:
            client = HandedOver(sock, user)
            assert client.join("R") == FORBIDDEN("R"), user
            client.close()
        assert app.paths == ["/ws/%2E%2E/rooms/R", "/ws/%2E/rooms/R", "/ws/a%2Fb/rooms/R"]
        worker.wait_log(r"user '\.\.' may not join room 'R' \(http: HTTP 403\)")
    finally:
        app.close()


# -------------------------------------------------------------------- the Host header chooses nothing

def test_the_host_header_does_not_decide_who_the_client_is(harness):
    """lws moves a parsed request to the vhost its Host header names among the vhosts of the
    same port (lws_select_vhost): the direct and handoff vhosts must never share one."""
    acl = os.path.join(harness.run_dir, "rooms.acl")
    write_file(acl, "R        alice\npublic-* %anonymous\n")
    broker = harness.start_broker(topics=["elog"])
    worker = start_worker(harness, broker, f"file:{acl}")
    sock = handoff_path(harness)
    for host in ["direct", "d", ":1", "handoff"]:
        alice = HandedOver(sock, "alice", host=host)  # handed over: stays alice
        assert alice.join("R") == [], host
        alice.close()
        raw = RawWs(worker.port, upgrade_head(drop=["Host"], extra=[f"Host: {host}"]))  # direct: stays anonymous
        raw.upgraded()
        raw.s.sendall(ws_frame("40/psdm_ws,") + ws_frame('42/psdm_ws,1["join","public-x"]') +
                      ws_frame('42/psdm_ws,2["join","R"]'))
        assert raw.texts(3)[1:] == ["43/psdm_ws,1[]", '43/psdm_ws,2[{"error":"forbidden","room":"R"}]'], host
        raw.close()
    assert "has no identity" not in worker.log_text()
