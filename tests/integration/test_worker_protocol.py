"""psdm_socketd against clients that misbehave, stall or go quiet, and a Kafka
broker that goes away: the worker answers per the protocol, logs once, and every
client that behaves keeps getting every message."""
import base64
import json
import os
import re
import socket
import struct
import time
import urllib.error
import urllib.request

import pytest

from harness import worker_config
from rawws import RawEio
from test_worker import base_config, msg


def start(harness, **extra):
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker, **extra))
    return broker, worker


@pytest.mark.parametrize("kind", ["node4", "node2"])
def test_ping_keeps_an_idle_connection_alive(harness, kind):
    broker, worker = start(harness, ping_interval_ms=1000, ping_timeout_ms=1000)
    client = harness.start_client(kind, worker.url, join=["xpptut15"], count=1, extra=["--no-reconnect"])
    client.wait("ready")
    # Idle for well past interval + timeout: only pings flow (v4 server->client, v3 client->server).
    time.sleep(4.0)  # the behaviour under test is "nothing happens for a while"
    broker.produce("elog", [msg("xpptut15", 7)])
    client.wait("done")
    assert not [e for e in client.events if e["ev"] == "disconnect"]


@pytest.mark.parametrize("eio", [4, 3])
def test_a_client_that_stops_answering_pings_is_dropped(harness, eio):
    broker, worker = start(harness, ping_interval_ms=1000, ping_timeout_ms=1000)
    raw = RawEio(worker.url, eio=eio)
    assert raw.open["pingInterval"] == 1000 and raw.open["pingTimeout"] == 1000
    raw.connect_ns()
    code, reason = raw.wait_close()  # never answers "2" (v4) / never sends "2" (v3)
    assert (code, reason) == (1000, "ping timeout")
    raw.close()


def test_polling_transport_gets_an_engineio_error(harness):
    broker, worker = start(harness)
    url = worker.url + "/lgbk_socketio/socket.io/?EIO=4&transport=polling&t=abc"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=5)
    assert e.value.code == 400
    assert json.loads(e.value.read()) == {"code": 0, "message": "transport unknown"}


@pytest.mark.parametrize("bad, code, reason", [
    ("4x", 1002, "malformed Socket.IO packet: bad_type"),
    ('42/psdm_ws,["join"', 1002, "malformed Socket.IO packet: bad_json"),
    ("9", 1002, "malformed Engine.IO packet"),
    (b"\x01\x02", 1003, "binary frames are not supported"),
    ("42/psdm_ws," + json.dumps(["join", "x" * 3000]), 1009, "message longer than max_payload (2048 bytes)"),
], ids=["bad-sio-type", "bad-json", "bad-eio-type", "binary", "too-large"])
def test_bad_packets_close_that_client_only(harness, bad, code, reason):
    broker, worker = start(harness, max_payload="2k")
    good = harness.start_client("node4", worker.url, join=["xpptut15"], count=2)
    good.wait("ready")
    raw = RawEio(worker.url)
    raw.connect_ns()
    if isinstance(bad, bytes):
        raw.send_binary(bad)
    else:
        raw.send(bad)
    assert raw.wait_close() == (code, reason)
    raw.close()
    broker.produce("elog", [msg("xpptut15", 1), msg("xpptut15", 2)])
    good.wait("done")
    assert [m["seq"] for m in good.messages()] == [1, 2]


def test_protocol_errors_that_keep_the_connection(harness):
    broker, worker = start(harness, max_rooms_per_client=3)
    raw = RawEio(worker.url)
    raw.send("40/nope,")
    assert raw.next_text() == '44/nope,{"message":"Invalid namespace"}'
    raw.connect_ns()
    raw.send('42/psdm_ws,1["join",42]')
    assert raw.next_text() == '43/psdm_ws,1[{"error":"invalid room"}]'
    raw.send('42/psdm_ws,2["shout","hi"]')
    assert raw.next_text() == '43/psdm_ws,2[{"error":"unknown event"}]'
    for i in range(3):
        raw.send(f'42/psdm_ws,{10 + i}["join","room{i}"]')
        assert raw.next_text() == f"43/psdm_ws,{10 + i}[]"
    raw.send('42/psdm_ws,20["join","room3"]')
    assert "too many rooms" in raw.next_text()
    raw.send('42/psdm_ws,21["leave","room0"]')
    assert raw.next_text() == "43/psdm_ws,21[]"
    broker.produce("elog", [msg("room0", 0), msg("room1", 1)])
    got = json.loads(raw.next_text()[len("42/psdm_ws,"):])
    assert got[0] == "psdm_ws_msg" and got[1]["seq"] == 1
    # The record's Kafka position, in the object (kafka/position.h): room1's record is elog's second.
    assert got[1]["psdm_ws_msg_position"] == "elog/0/1" and len(got) == 2, got
    raw.close()


def test_slow_consumer_is_closed_and_others_get_everything(harness):
    # A backlog of 1 MiB holds ~100 of these 10 kB messages: a burst that a reading
    # client absorbs, and that a stalled one exceeds within the first few batches.
    broker, worker = start(harness, max_payload="16k", client_backlog="1M")
    good = harness.start_client("node4", worker.url, join=["busy"], name="client-good", timeout_ms=120000)
    good.wait("ready")
    stalled = RawEio(worker.url, rcvbuf=4096)
    stalled.connect_ns()
    stalled.send('42/psdm_ws,1["join","busy"]')
    assert stalled.next_text() == "43/psdm_ws,1[]"
    # The stalled client now reads nothing while 10 MB flow to the room, produced in
    # batches that the good client receives before the next (the dev broker keeps
    # only a few MB per partition).
    pad = "p" * 10000
    for batch in range(10):
        broker.produce("elog", [msg("busy", batch * 100 + i, pad=pad) for i in range(100)])
        for _ in range(100):
            good.wait("msg")
    assert [m["seq"] for m in good.messages()] == list(range(1000))
    line = worker.wait_log(r"\[PSDM-SLOW\] client \d+ \(user ''\): client backlog .*closing with 1013").group(0)
    assert "1048576" in line
    stalled.close()


@pytest.mark.parametrize("sends", ["io_uring", "send"])
def test_a_slow_reader_gets_every_frame_whole(harness, sends):
    """The worker writes to a client with an empty queue at once (through io_uring, or a
    send() of its own) and queues only what the kernel does not take: with a 4 kB receive
    buffer and 20 kB messages nearly every such write is partial, and the rest must follow,
    byte for byte, before anything else."""
    broker, worker = start(harness, max_payload="32k", client_backlog="8M", fanout_sends=sends)
    m = worker.wait_log(r"fanout_sends = (io_uring: up to \d+|send: a send\(\)|io_uring, but .*)")
    if sends == "io_uring" and ", but " in m.group(0):
        pytest.skip(f"this kernel refuses io_uring: {m.group(0)}")
    slow = RawEio(worker.url, rcvbuf=4096)
    slow.connect_ns()
    slow.send('42/psdm_ws,1["join","busy"]')
    assert slow.next_text() == "43/psdm_ws,1[]"
    pad = "q" * 20000
    broker.produce("elog", [msg("busy", i, pad=pad) for i in range(200)])
    for i in range(200):
        text = slow.next_text()  # websocket-client checks each frame's framing
        assert text.startswith('42/psdm_ws,["psdm_ws_msg",'), text[:80]
        got = json.loads(text[len("42/psdm_ws,"):])[1]
        assert (got["seq"], got["pad"]) == (i, pad)
        if i % 20 == 0:
            slow.send('42/psdm_ws,["leave","nothing"]')  # the client talks while it lags
    slow.close()


def test_worker_serves_while_kafka_is_down_and_resumes(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    broker.down()
    worker = harness.start_worker(base_config(broker), wait_kafka=False)
    client = harness.start_client("python", worker.url, join=["xpptut15"], count=2)
    client.wait("ready")  # clients are served while Kafka is unreachable
    broker.up()
    worker.wait_log(r"ready: [1-9]\d* partition\(s\) assigned", timeout=60)
    broker.produce("elog", [msg("xpptut15", 1)])
    # Lost later: the worker keeps its clients and resumes delivery when the broker returns.
    broker.down()
    broker.up()
    broker.produce("elog", [msg("xpptut15", 2)])
    client.wait("done", timeout=60)
    assert [m["seq"] for m in client.messages()] == [1, 2]


def test_connections_past_the_limit_are_refused_cleanly(harness):
    broker, worker = start(harness, max_connections=5)
    clients = [RawEio(worker.url) for _ in range(5)]
    with pytest.raises(Exception):  # the handshake is refused: no 101
        RawEio(worker.url)
    worker.wait_log(r"refused upgrade: at capacity \(5 connections\)")
    clients.pop().close()
    # The worker frees the slot when it sees the close; then a new client gets in.
    harness.wait_for(worker.proc, lambda: _can_connect(worker.url), "a slot to be freed", 10)
    for c in clients:
        c.connect_ns()  # the others were never disturbed
        c.close()


def _can_connect(url):
    try:
        RawEio(url, timeout=2).close()
        return True
    except Exception:  # noqa: BLE001 - refused while the slot is still taken
        return False


# -------------------------------------------------------------------- strict WebSocket handshake and frames
# Raw sockets, so that every byte of the request is the test's: what the worker answers to
# each malformed or unsupported upgrade on its direct port (sio/ws_handshake.h), and what it
# does with the frames that follow (RFC 6455 sections 4.2, 5.1, 8.1).

WS_PATH = "/lgbk_socketio/socket.io/"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's sample nonce


def upgrade_head(path=WS_PATH + "?EIO=4&transport=websocket", method="GET", version="13", key=WS_KEY,
                 extra=(), drop=(), http="HTTP/1.1"):
    """An upgrade request head (bytes); `extra` header lines are added, `drop` names left out."""
    headers = [("Host", "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    lines = [f"{method} {path} {http}"] + [f"{k}: {v}" for k, v in headers if k not in drop] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_frame(payload, opcode=1, fin=True, mask=True):
    """One client frame (RFC 6455 section 5.2), masked unless told otherwise."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data)
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + data
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


class RawWs:
    """A WebSocket client made of a plain socket: sends what the test says, byte for byte."""

    def __init__(self, port, data, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.s.sendall(data)

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("the worker closed the connection")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self):
        """(status line, {lower-case header: value}, body) of an HTTP answer that ends in a close."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, body = self.buf.split(b"\r\n\r\n", 1)
        self.buf = b""
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            pass
        body += self.buf
        lines = head.decode().split("\r\n")
        headers = dict((k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
        assert int(headers["content-length"]) == len(body), (headers, body)
        return lines[0], headers, body.decode()

    def upgraded(self):
        """Reads the 101 answer and the Engine.IO open packet."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        op, data = self.frame()
        assert op == 1 and data.startswith(b"0{"), (op, data)

    def frame(self):
        """(opcode, payload) of the next server frame."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "a server frame is never masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        return b0 & 0x0F, self._take(n)

    def texts(self, count):
        """The next `count` text frames, answering Engine.IO pings; control frames are returned."""
        out = []
        while len(out) < count:
            op, data = self.frame()
            if op == 1 and data == b"2":
                self.s.sendall(ws_frame("3"))
                continue
            out.append((op, data) if op != 1 else data.decode())
        return out

    def close_code(self):
        """Reads frames up to the worker's close; returns (code, reason)."""
        while True:
            op, data = self.frame()
            if op == 8:
                return struct.unpack(">H", data[:2])[0], data[2:].decode()

    def close(self):
        self.s.close()


def start_quiet(harness, **extra):
    """A worker whose Kafka is not needed by the test (no broker: it keeps serving)."""
    keys = dict(kafka__bootstrap__servers="127.0.0.1:1", topics="elog", authz="allow-all")
    keys.update(extra)
    return harness.start_worker(worker_config(**keys), wait_kafka=False)


REFUSALS = [
    # (request head, status line, headers that must be there, body (part), log reason)
    (upgrade_head(version="99"), "HTTP/1.1 426 Upgrade Required",
     {"sec-websocket-version": "13", "upgrade": "websocket", "connection": "Upgrade, close"},
     "this server speaks 13", "Sec-WebSocket-Version '99' is not 13"),
    (upgrade_head(drop=["Sec-WebSocket-Version"]), "HTTP/1.1 426 Upgrade Required",
     {"sec-websocket-version": "13"}, "speaks 13", "Sec-WebSocket-Version (none) is not 13"),
    (upgrade_head(key=""), "HTTP/1.1 400 Bad Request", {}, "Invalid Sec-WebSocket-Key",
     "Sec-WebSocket-Key '' is not 16 bytes in base64"),
    (upgrade_head(key="not-base64!!"), "HTTP/1.1 400 Bad Request", {}, "Invalid Sec-WebSocket-Key",
     "Sec-WebSocket-Key 'not-base64!!' is not 16 bytes in base64"),
    (upgrade_head(key=base64.b64encode(b"x" * 15).decode()), "HTTP/1.1 400 Bad Request", {},
     "Invalid Sec-WebSocket-Key", "Sec-WebSocket-Key 'eHh4eHh4eHh4eHh4eHh4' is not 16 bytes in base64"),
    (upgrade_head(drop=["Sec-WebSocket-Key"]), "HTTP/1.1 400 Bad Request", {}, "Invalid Sec-WebSocket-Key",
     "Sec-WebSocket-Key (none) is not 16 bytes in base64"),
    (upgrade_head(path=WS_PATH + "?EIO=5&transport=websocket"), "HTTP/1.1 400 Bad Request",
     {"content-type": "application/json"}, '{"code":5,"message":"unsupported protocol version"}',
     "query 'EIO=5&transport=websocket': unsupported protocol version"),
    (upgrade_head(path=WS_PATH + "?EIO=4&transport=polling"), "HTTP/1.1 400 Bad Request", {},
     '{"code":0,"message":"transport unknown"}', "query 'EIO=4&transport=polling': transport unknown"),
    (upgrade_head(path="/lgbk_socketio/other/?EIO=4&transport=websocket"), "HTTP/1.1 404 Not Found", {},
     '{"code":0,"message":"Not found"}', "path '/lgbk_socketio/other/' does not end in /socket.io/"),
    (upgrade_head(drop=["Upgrade"]), "HTTP/1.1 400 Bad Request", {}, '{"code":3,"message":"Bad request"}',
     "not a WebSocket upgrade (Upgrade: none)"),
    (upgrade_head(method="POST"), "HTTP/1.1 400 Bad Request", {}, "WebSocket upgrade needs GET",
     "method 'POST' is not GET"),
    (upgrade_head(http="HTTP/1.0"), "HTTP/1.1 400 Bad Request", {}, "needs HTTP/1.1", "'HTTP/1.0' is not HTTP/1.1"),
    (upgrade_head(drop=["Connection"]), "HTTP/1.1 400 Bad Request", {}, "Connection: Upgrade",
     "Connection (none) does not list 'upgrade'"),
    (upgrade_head(drop=["Host"]), "HTTP/1.1 400 Bad Request", {}, "needs a Host header", "no Host header"),
    (upgrade_head(extra=["Sec-WebSocket-Protocol: psdm-kafka"]), "HTTP/1.1 400 Bad Request", {},
     "Unsupported Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol 'psdm-kafka' asks for the internal protocol 'psdm-kafka'"),
    (upgrade_head(extra=["Sec-WebSocket-Protocol: chat"]), "HTTP/1.1 400 Bad Request", {},
     "Unsupported Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol 'chat' does not offer psdm-socketio"),
    (upgrade_head(extra=["X-Pad: " + "a" * 7000]), "HTTP/1.1 431 Request Header Fields Too Large", {},
     "Request header fields too large", "request head longer than 4096 bytes"),
    (upgrade_head(path=WS_PATH + "?EIO=4&transport=websocket&pad=" + "a" * 3000), "HTTP/1.1 414 URI Too Long", {},
     "Request line too long", "request line longer than 2048 bytes"),
    (upgrade_head(extra=["X-Bad: a\nb"]), "HTTP/1.1 400 Bad Request", {}, "Malformed HTTP request",
     "malformed request: header 'X-Bad' has a control character (a bare CR or LF?)"),
]


def test_refused_upgrades_get_a_status_and_one_log_line(harness):
    worker = start_quiet(harness)
    for head, status, headers, body, reason in REFUSALS:
        raw = RawWs(worker.port, head)
        got_status, got_headers, got_body = raw.answer()
        raw.close()
        assert got_status == status, (head[:120], got_status)
        for k, v in headers.items():
            assert got_headers.get(k) == v, (head[:120], k, got_headers)
        assert got_headers["connection"].endswith("close")
        assert body in got_body, (head[:120], got_body)
        code = status.split()[1]
        line = re.escape(f"refused upgrade: {reason}; answered {code} (client 127.0.0.1)")
        worker.wait_log(line)
        assert len(re.findall(line, worker.log_text())) == 1, reason


def test_a_request_head_that_never_ends_is_closed_without_an_answer(harness):
    worker = start_quiet(harness)
    raw = RawWs(worker.port, b"GET " + WS_PATH.encode() + b"?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    raw.s.settimeout(20)
    assert raw.s.recv(100) == b""  # closed, nothing written
    assert 9.0 <= time.monotonic() - started < 15.0
    raw.close()
    worker.wait_log(r"closed a connection of client 127\.0\.0\.1: no complete request within 10 s \(\d+ bytes\)")


def test_503_at_capacity_with_retry_after(harness):
    worker = start_quiet(harness, max_connections=1)
    first = RawWs(worker.port, upgrade_head())
    first.upgraded()
    raw = RawWs(worker.port, upgrade_head())
    status, headers, body = raw.answer()
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert headers["retry-after"] == "5" and "try again later" in body
    worker.wait_log(r"refused upgrade: at capacity \(1 connections\); answered 503 \(client 127\.0\.0\.1\)")
    first.close()


def test_frames_sent_with_the_upgrade_are_replayed_in_order(harness):
    """Early data: whatever the client sends together with its upgrade, in one write or
    cut anywhere, is read as frames in order (lws 4.1 overwrote such bytes with its 101
    answer when it parsed the upgrade itself: close 1002 "frag ctl" / "rsv bits")."""
    # No Kafka here: a resume is answered once the worker knows its positions, or after
    # recovery_timeout_ms (the second part's join 2 carries an unusable second argument).
    worker = start_quiet(harness, recovery_timeout_ms="500")
    joins = [ws_frame(f'42/psdm_ws,{i}["join","r{i}"]') for i in range(50)]
    raw = RawWs(worker.port, upgrade_head() + ws_frame("40/psdm_ws,") + b"".join(joins))
    raw.upgraded()
    got = raw.texts(51)
    assert got[0].startswith("40/psdm_ws,")
    assert got[1:] == [f"43/psdm_ws,{i}[]" for i in range(50)]
    raw.close()

    # A fragmented message with a ping between its fragments, a frame larger than the
    # worker's 512-byte receive buffer, a multi-byte character cut between two fragments,
    # and the whole cut in the middle of a frame header and of the request head.
    pad = "p" * 3000
    early = (ws_frame("40/psdm_ws,") +
             ws_frame('42/psdm_ws,1["jo', fin=False) + ws_frame(b"ping!", opcode=9) +
             ws_frame('in","ab', opcode=0, fin=False) + ws_frame('c"]', opcode=0) +
             ws_frame('42/psdm_ws,2["join","big",{"pad":"' + pad + '"}]') +
             ws_frame('42/psdm_ws,3["join","caf\xc3'.encode("latin-1"), fin=False) +
             ws_frame('\xa9"]'.encode("latin-1"), opcode=0))
    data = upgrade_head() + early
    cut = len(upgrade_head()) - 7
    raw = RawWs(worker.port, data[:cut])
    time.sleep(0.2)  # the worker reads the first piece on its own
    raw.s.sendall(data[cut:cut + 40])
    time.sleep(0.2)
    raw.s.sendall(data[cut + 40:])
    raw.upgraded()
    got = raw.texts(5)
    assert got[0].startswith("40/psdm_ws,")
    # (join's second argument is read as positions to resume from: this one is not, which the
    # ack says once the worker could name its positions: here, with no Kafka, after 500 ms)
    refused_resume = ('43/psdm_ws,2[{"positions":{},"recovered":false,'
                      '"reason":"position key \'pad\' is not TOPIC/PARTITION"}]')
    assert got[1:] == [(10, b"ping!"), "43/psdm_ws,1[]", "43/psdm_ws,3[]", refused_resume]
    raw.close()
    assert "closing (" not in worker.log_text()


@pytest.mark.parametrize("frames", [
    [ws_frame(b'42/psdm_ws,1["join","\xff"]')],
    [ws_frame(b'42/psdm_ws,1["join","\xc3', fin=False), ws_frame(b'(x"]', opcode=0)],
    [ws_frame(b"4\xed\xa0\x80")],
], ids=["invalid-byte", "bad-across-fragments", "surrogate"])
def test_invalid_utf8_in_a_text_message_closes_with_1007(harness, frames):
    worker = start_quiet(harness)
    raw = RawWs(worker.port, upgrade_head())
    raw.upgraded()
    raw.s.sendall(ws_frame("40/psdm_ws,") + b"".join(frames))
    assert raw.close_code() == (1007, "text frame is not valid UTF-8")
    raw.close()
    worker.wait_log(r"client \d+: closing \(1007 text frame is not valid UTF-8\)")


def test_an_unmasked_client_frame_closes_with_1002(harness):
    worker = start_quiet(harness)
    raw = RawWs(worker.port, upgrade_head())
    raw.upgraded()
    raw.s.sendall(ws_frame("40/psdm_ws,", mask=False))
    op, data = raw.frame()
    raw.close()
    assert (op, data[:2]) == (8, struct.pack(">H", 1002)), (op, data)
