"""Handoffs that end every way: ten thousand handoffs that are refused (unusable request,
upgrade the rules refuse), withdrawn, whose client is gone, or that become a websocket,
each counted once in the worker's exit summary, leave no descriptor behind, and a normal
handoff still works after them. The identity travels with the connection: the worker
never holds one for a connection that does not exist. Requests back to back on one Unix
connection (as an Apache child sends them) each keep their own identity, and a refused one
does not end the connection.

The test speaks the handoff protocol itself (handoff/handoff_proto.h, version 2, kind 1):
each "client connection" is one end of a socketpair, passed with SCM_RIGHTS as
mod_psdm_socket passes the client's TCP socket; the worker answers that client itself."""
import base64
import os
import re
import socket
import struct

import stack

SIO_PATH = "/lgbk_socketio/socket.io/?EIO=4&transport=websocket"
KEY = base64.b64encode(b"sixteen byte key").decode()
ROUNDS = 10000


def handoff_request(uri=SIO_PATH, user="alice", protocol=None, key=KEY):
    """A kind-1 (fd attached) request; key=None leaves out a required field."""
    fields = [(1, user), (3, "127.0.0.1:40000"), (4, "127.0.0.1"), (5, uri), (7, "13")]
    if key is not None:
        fields.append((6, key))
    if protocol:
        fields.append((9, protocol))
    body = b"".join(struct.pack(">BH", tag, len(v.encode())) + v.encode() for tag, v in fields)
    return b"PSDM" + bytes([2, 1]) + struct.pack(">HIH", 0, len(body), len(fields)) + body


def offer(sock_path, msg, client_fd):
    """Connects to the handoff socket, sends msg with client_fd and ends the connection's
    sending side (the module keeps its connection for more; this one ends after one): as
    the module does, it never waits for the worker."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    socket.send_fds(s, [msg], [client_fd])
    s.shutdown(socket.SHUT_WR)
    return s


def wait_closed(s):
    """Waits until the worker closes its end: it is done with this handoff."""
    while s.recv(64):
        pass
    s.close()


def read_all(mine):
    """What the worker wrote to the client before closing it."""
    mine.settimeout(10)
    data = b""
    while True:
        chunk = mine.recv(4096)
        if not chunk:
            return data
        data += chunk


# Every way a handoff can end without a websocket, and one that ends after it.
def refused_malformed(sock_path):
    """A request the worker cannot use: it answers the client 503 itself."""
    client, mine = socket.socketpair()
    s = offer(sock_path, handoff_request(key=None), client.fileno())
    client.close()
    wait_closed(s)
    assert read_all(mine).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    mine.close()


def withdrawn(sock_path):
    """The module could send only part of the request and kept the client: the worker
    drops its copy untouched."""
    client, mine = socket.socketpair()
    msg = handoff_request()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    socket.send_fds(s, [msg[: len(msg) // 2]], [client.fileno()])
    client.close()
    s.shutdown(socket.SHUT_WR)
    wait_closed(s)
    assert read_all(mine) == b""  # nothing written to a client the module kept
    mine.close()


def refused_upgrade(sock_path, status, **req):
    """An upgrade the worker's rules refuse: it answers the client with the status itself."""
    client, mine = socket.socketpair()
    s = offer(sock_path, handoff_request(**req), client.fileno())
    client.close()
    wait_closed(s)
    assert read_all(mine).startswith(b"HTTP/1.1 " + status + b" ")
    mine.close()


def handed_over(sock_path, close_client_first=False, **req):
    client, mine = socket.socketpair()
    if close_client_first:
        mine.close()  # the browser went away before the worker got the connection
    s = offer(sock_path, handoff_request(**req), client.fileno())
    client.close()
    wait_closed(s)  # the worker wrote the 101 and took the connection
    if not close_client_first:
        mine.close()


CASES = [
    ("refused: malformed", refused_malformed, "refused"),
    ("cut short: the module kept the client", withdrawn, "withdrawn"),
    ("client gone before the worker got it", lambda p: handed_over(p, close_client_first=True), "adopted"),
    ("upgrade refused: not a socket.io path", lambda p: refused_upgrade(p, b"404", uri="/elsewhere/"), "refused"),
    ("upgrade names an internal protocol", lambda p: refused_upgrade(p, b"400", protocol="psdm-handoff-conn"),
     "refused"),
    ("upgrade names an unknown protocol", lambda p: refused_upgrade(p, b"400", protocol="chat"), "refused"),
    ("established, then the client leaves", handed_over, "adopted"),
]


def ws_frame(text):
    """A masked client text frame (payload < 126 bytes)."""
    data, mask = text.encode(), os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def read_frame(s, buf):
    """(text, rest) of the next server text frame in buf + what s delivers."""
    while True:
        if len(buf) >= 2:
            n, head = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4:
                n, head = struct.unpack(">H", buf[2:4])[0], 4
            if n < 126 or head == 4:
                if len(buf) >= head + n:
                    return buf[head:head + n].decode(), buf[head + n:]
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("the worker closed the connection")
        buf += chunk


def normal_handoff(sock_path):
    """A complete handoff: 101, the Engine.IO open packet, the namespace connect."""
    client, mine = socket.socketpair()
    mine.settimeout(10)
    s = offer(sock_path, handoff_request(user="bob"), client.fileno())
    client.close()
    wait_closed(s)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = mine.recv(4096)
        assert chunk, "closed before the 101"
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    text, buf = read_frame(mine, buf)
    assert text.startswith("0{"), text
    mine.sendall(ws_frame("40/psdm_ws,"))
    text, buf = read_frame(mine, buf)
    assert text.startswith("40/psdm_ws,"), text
    mine.close()


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_handoffs_that_end_every_way_are_counted_and_leave_nothing_behind(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock, peers=str(os.geteuid()))
    pid = worker.proc.pid
    fds_before = open_fds(pid)

    want = {"adopted": 0, "refused": 0, "withdrawn": 0}
    established = 0
    for i in range(ROUNDS):
        name, run, outcome = CASES[i % len(CASES)]
        try:
            run(sock)
        except Exception as e:  # noqa: BLE001 - name the case that broke
            raise AssertionError(f"round {i} ({name}): {e!r}") from e
        want[outcome] += 1
        established += run is handed_over

    # Every connection of those rounds ends (the worker sees each client's close).
    harness.wait_for(worker.proc, lambda: open_fds(pid) <= fds_before, "fds back to the start", 15)
    normal_handoff(sock)
    want["adopted"] += 1
    worker.wait_log(r"client \d+ connected \(user 'bob'")

    assert worker.proc.stop() == 0
    m = re.search(r"handoffs: (\d+) adopted, (\d+) refused, (\d+) withdrawn", worker.log_text())
    assert m, "no handoff summary in the worker's log"
    got = {"adopted": int(m.group(1)), "refused": int(m.group(2)), "withdrawn": int(m.group(3))}
    assert got == want
    log = worker.log_text()
    assert "asks for the internal protocol 'psdm-handoff-conn'" in log
    assert "PSDM-BOUNDARY" not in log
    # Each websocket carries the identity of its own handoff.
    assert len(re.findall(r"client \d+ connected \(user 'alice'", log)) == established


def test_requests_back_to_back_on_one_connection_keep_their_own_identity(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock, peers=str(os.geteuid()))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    users = ["alice", "bob", None, "carol"]  # None: a request the worker cannot use
    mine = []
    for user in users:
        client, other = socket.socketpair()
        msg = handoff_request(user=user) if user else handoff_request(key=None)
        socket.send_fds(s, [msg], [client.fileno()])  # all queued before the worker reads
        client.close()
        mine.append(other)
    for user, other in zip(users, mine):
        other.settimeout(10)
        head = other.recv(4096)
        want = b"HTTP/1.1 101 " if user else b"HTTP/1.1 503 "
        assert head.startswith(want), (user, head[:40])
    for user in ("alice", "bob", "carol"):
        worker.wait_log(rf"client \d+ connected \(user '{user}'")
    # The connection is still the module's to use: one more, after the refusal.
    client, other = socket.socketpair()
    socket.send_fds(s, [handoff_request(user="dave")], [client.fileno()])
    client.close()
    other.settimeout(10)
    assert other.recv(4096).startswith(b"HTTP/1.1 101 ")
    worker.wait_log(r"client \d+ connected \(user 'dave'")
    s.close()
    for other in mine + [other]:
        other.close()
    assert worker.proc.stop() == 0
    m = re.search(r"handoffs: (\d+) adopted, (\d+) refused, (\d+) withdrawn", worker.log_text())
    assert m and m.groups() == ("4", "1", "0"), m and m.groups()
