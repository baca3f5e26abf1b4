"""A sick worker must not cost Apache its threads: with the worker stopped (SIGSTOP),
200 concurrent upgrades on an Apache of 50 threads (20 children under prefork) leave it
serving ordinary requests at once; every upgrade is answered 503 or, handed over, gets
its 101 once the worker runs again; and after SIGCONT new upgrades succeed."""
import os
import selectors
import signal
import socket
import time

import pytest

import stack
from rawws import RawEio

PATH = "/lgbk_socketio/socket.io/"
LOCATION = ('<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n'
            "  SetEnv WEBAUTH_USER alice\n  PsdmSocketUser env:WEBAUTH_USER\n</LocationMatch>\n")
UPGRADE = ("GET " + PATH + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def static_get_seconds(port):
    """Time of one plain GET of a static file on a fresh connection; asserts 200."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /ready.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "closed before answering"
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:80]
    return time.monotonic() - t0


def collect_status_lines(conns, timeout):
    """Reads the status line of each connection that answers within `timeout` seconds.
    Returns {conn: status code}; a connection closed without a status maps to None."""
    answers = {}
    sel = selectors.DefaultSelector()
    buffers = {}
    for c in conns:
        sel.register(c, selectors.EVENT_READ)
        buffers[c] = b""
    deadline = time.monotonic() + timeout
    while buffers and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            c = key.fileobj
            try:
                chunk = c.recv(4096)
            except OSError:
                chunk = b""
            buffers[c] += chunk
            if not chunk or b"\r\n" in buffers[c]:
                line = buffers[c].split(b"\r\n", 1)[0]
                answers[c] = int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None
                sel.unregister(c)
                del buffers[c]
    sel.close()
    return answers


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_a_stopped_worker_does_not_stall_apache(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock)
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 2\n" + LOCATION, mpm=mpm)
    conns = []
    os.kill(worker.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(200):
            c = socket.create_connection(("127.0.0.1", httpd.port), timeout=10)
            c.sendall(UPGRADE.format(port=httpd.port).encode())
            conns.append(c)
        # Apache serves ordinary requests at once while the upgrades are pending.
        slowest = max(static_get_seconds(httpd.port) for _ in range(10))
        print(f"slowest of 10 static GETs with the worker stopped and 200 upgrades pending: {slowest * 1000:.1f} ms")
        assert slowest < 0.1, f"a static file took {slowest * 1000:.0f} ms with the worker stopped"
        # Whatever is answered while the worker is stopped is a 503, never a 101.
        early = collect_status_lines(conns, timeout=1.0)
        assert set(early.values()) <= {503}, f"answers while stopped: {sorted(set(early.values()), key=str)}"
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
    # Handed over while it was stopped: each gets its 101 now that it runs again.
    pending = [c for c in conns if c not in early]
    late = collect_status_lines(pending, timeout=20)
    assert len(late) == len(pending), f"{len(pending) - len(late)} upgrades never answered"
    assert set(late.values()) <= {101, 503}, f"answers after SIGCONT: {sorted(set(late.values()), key=str)}"
    for c in conns:
        c.close()
    # And new upgrades succeed.
    raw = RawEio(httpd.url)
    raw.connect_ns()
    raw.close()
