"""mod_psdm_socket in a real httpd: authentication and checks in Apache, then the
connection handed to the worker (or relayed, for TLS), with real clients."""
import http.client
import json
import os
import subprocess
import urllib.parse

import pytest

import stack
from rawws import RawEio

PATH = "/lgbk_socketio/socket.io/"
LOCATION = '<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n{inner}</LocationMatch>\n'
WEBAUTH = ("  SetEnv WEBAUTH_USER alice@SLAC.STANFORD.EDU\n  PsdmSocketUser env:WEBAUTH_USER\n"
           "  PsdmSocketStripRealm SLAC.STANFORD.EDU\n")


# Every test here runs under mpm_event and mpm_prefork (the module must not depend on
# threads; a handed-over connection must free a prefork child as it frees a thread).
MPM = {"name": "event"}


@pytest.fixture(autouse=True, params=["event", "prefork"])
def apache_mpm(request):
    MPM["name"] = request.param
    yield request.param


def start_stack(harness, inner=WEBAUTH, mpm=None, extra_conf="", worker=True, https=False):
    mpm = mpm or MPM["name"]
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    w = stack.start_worker(harness, broker, sock) if worker else None
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 2\n{extra_conf}"
                                + LOCATION.format(inner=inner), mpm=mpm, https=https)
    return broker, w, httpd, sock


def msg(room, seq):
    return json.dumps({"experiment_name": room, "seq": seq})


def get(url, headers=None):
    """GET with exactly these headers (urllib would force 'Connection: close')."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode(), dict(r.getheaders())
    finally:
        conn.close()


def upgrade_headers(**more):
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    h.update(more)
    return h


@pytest.mark.parametrize("kind", ["python", "node4", "node2"])
def test_kafka_message_reaches_a_client_through_apache(harness, kind):
    broker, worker, httpd, _ = start_stack(harness)
    client = harness.start_client(kind, httpd.url, path=PATH, join=["xpptut15"], count=2)
    client.wait("ready")
    broker.produce("elog", [msg("xpptut15", 1), msg("xpptut15", 2)])
    client.wait("done")
    assert sorted(m["seq"] for m in client.messages()) == [1, 2]
    assert all(m["psdm_ws_msg_type"] == "elog" for m in client.messages())
    with open(os.path.join(harness.run_dir, "access.log")) as f:
        handed = [line for line in f if f'"GET {PATH}?' in line]
    assert len(handed) == 1 and '" 101 ' in handed[0]  # the access log tells the truth


def test_worker_sees_the_identity_apache_authenticated_not_the_clients(harness):
    broker, worker, httpd, _ = start_stack(harness)
    raw = RawEio(httpd.url, headers=["X-Psdm-User: mallory", "REMOTE_USER: mallory", "X-Remote-User: mallory"])
    raw.connect_ns()
    m = worker.wait_log(r"client (\d+) connected \(user '([^']*)', Engine.IO v4\) from ([0-9.]+):(\d+) via handoff")
    assert m.group(2) == "alice"  # realm dropped, client headers ignored
    # The address is the one Apache saw: the client's own socket.
    assert (m.group(3), int(m.group(4))) == raw.ws.sock.getsockname()
    raw.send('42/psdm_ws,1["join","xpptut15"]')
    assert raw.next_text().startswith("43/psdm_ws,1[]")
    raw.close()
    # One line when it ends: who, where from, why, how long, rooms, bytes each way.
    worker.wait_log(rf"client {m.group(1)} closed \(user 'alice', {m.group(3)}:{m.group(4)}\): the client closed "
                    r"\(1000\); \d+\.\d s, 1 room\(s\) joined, \d+ bytes in, \d+ bytes out")


def test_header_identity_from_a_trusted_front_proxy(harness):
    inner = "  PsdmSocketUser header:X-Vouch-Idp-Claims-Name\n"
    broker, worker, httpd, _ = start_stack(harness, inner=inner)
    raw = RawEio(httpd.url, headers=["X-Vouch-Idp-Claims-Name: bob@example.org"])
    raw.connect_ns()
    # No PsdmSocketStripRealm here: the name stays whole.
    assert worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1) == "bob@example.org"
    raw.close()


def test_no_identity_is_401_and_nothing_reaches_the_worker(harness):
    broker, worker, httpd, _ = start_stack(harness, inner="")
    status, body, _ = get(httpd.url + PATH + "?EIO=4&transport=websocket",
                          upgrade_headers(**{"X-Psdm-User": "mallory", "REMOTE_USER": "mallory"}))
    assert (status, body) == (401, "no authenticated user\n")
    assert "connected (user" not in worker.log_text()
    assert "PSDM0002" in open(os.path.join(harness.run_dir, "httpd.log")).read()


def test_foreign_origin_is_403(harness):
    broker, worker, httpd, _ = start_stack(harness)
    status, body, _ = get(httpd.url + PATH + "?EIO=4&transport=websocket",
                          upgrade_headers(Origin="https://evil.example"))
    assert (status, body) == (403, "origin not allowed\n")
    with pytest.raises(Exception, match="403"):
        RawEio(httpd.url, origin="http://127.0.0.1:1")  # same host, another port: another origin
    assert "PSDM0004" in open(os.path.join(harness.run_dir, "httpd.log")).read()
    # The page's own origin is fine.
    raw = RawEio(httpd.url, origin=httpd.url)
    raw.connect_ns()
    raw.close()


@pytest.mark.parametrize("headers, status, line", [
    ({}, 400, "not a WebSocket upgrade (expected 'Upgrade: websocket')"),
    (upgrade_headers(**{"Sec-WebSocket-Version": "8"}), 426,
     "unsupported WebSocket version (expected 'Sec-WebSocket-Version: 13')"),
], ids=["plain-get", "bad-version"])
def test_not_an_upgrade_is_400_with_one_line(harness, headers, status, line):
    broker, worker, httpd, _ = start_stack(harness)
    got_status, body, _ = get(httpd.url + PATH, headers)
    assert (got_status, body) == (status, line + "\n")


def test_worker_down_is_503_then_works_once_it_starts(harness):
    broker, _, httpd, sock = start_stack(harness, worker=False)
    status, body, hdrs = get(httpd.url + PATH + "?EIO=4&transport=websocket", upgrade_headers())
    assert status == 503 and hdrs.get("Retry-After") == "5"
    log = open(os.path.join(harness.run_dir, "httpd.log")).read()
    assert "PSDM0008" in log and sock in log
    stack.start_worker(harness, broker, sock)
    raw = RawEio(httpd.url)
    raw.connect_ns()
    raw.close()


def test_a_thousand_websockets_through_a_small_apache(harness):
    # MaxRequestWorkers is 50 (mpm_event) or 20 (mpm_prefork) in the harness: a held
    # websocket must not hold an Apache thread or child, or the 51st would wait.
    broker, worker, httpd, _ = start_stack(harness)
    clients = []
    try:
        for _ in range(1000):
            clients.append(RawEio(httpd.url))
        for c in clients[::50]:
            c.connect_ns()
        # Apache still answers ordinary requests at once.
        assert get(httpd.url + "/ready.txt")[0] == 200
        worker.wait_log(r"client 1000 connected")
    finally:
        for c in clients:
            c.close()


def make_cert(dirpath):
    key, crt = os.path.join(dirpath, "key.pem"), os.path.join(dirpath, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return key, crt


def test_tls_connections_are_relayed(harness):
    key, crt = make_cert(harness.run_dir)
    ssl_conf = (f"LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n"
                f"LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so\n"
                f"SSLEngine on\nSSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n")
    broker, worker, httpd, _ = start_stack(harness, extra_conf=ssl_conf, https=True)
    client = harness.start_client("node4", httpd.url, path=PATH, join=["xpptut15"], count=2, extra=["--insecure"])
    client.wait("ready")
    broker.produce("elog", [msg("xpptut15", 1), msg("xpptut15", 2)])
    client.wait("done")
    assert [m["seq"] for m in client.messages()] == [1, 2]
    assert worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1) == "alice"


def test_worker_over_capacity_is_503(harness):
    # The worker answers the client itself (Apache no longer waits for its verdict).
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock, max_connections=1)
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\n" + LOCATION.format(inner=WEBAUTH), mpm=MPM["name"])
    first = RawEio(httpd.url)
    status, body, hdrs = get(httpd.url + PATH + "?EIO=4&transport=websocket", upgrade_headers())
    assert status == 503 and hdrs.get("Retry-After") == "5", (status, hdrs)
    worker.wait_log(r"refused handoff from pid \d+ .*at capacity \(\d+ connections\); answered 503")
    first.connect_ns()  # the one already in is unaffected
    first.close()


def test_a_worker_whose_backlog_is_full_is_503_at_once(harness):
    # A Unix socket that never accepts or reads: a hung worker. What it is handed waits in
    # the kernel, costing Apache nothing: on each child's kept connection until its socket
    # buffer is full, then in the listen backlog. Past both, Apache answers 503 at once,
    # without waiting for the worker.
    import select
    import socket
    import time
    sock = os.path.join(harness.sock_dir, "hung.sock")
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(sock)
    os.chmod(sock, 0o666)
    hung.listen(1)
    waiting = []
    try:
        httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 500ms\n"
                                    + LOCATION.format(inner=WEBAUTH), mpm=MPM["name"])
        request = (f"GET {PATH}?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{httpd.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
        refused = None
        while refused is None and len(waiting) < 4000:  # in batches, until one is answered 503
            batch = [socket.create_connection(("127.0.0.1", httpd.port), timeout=10) for _ in range(100)]
            for c in batch:
                c.sendall(request)
            sent = time.monotonic()
            pending = list(batch)
            while pending and refused is None and time.monotonic() < sent + 1.0:
                ready, _, _ = select.select(pending, [], [], max(0.0, sent + 1.0 - time.monotonic()))
                for c in ready:
                    refused, elapsed = c.recv(4096), time.monotonic() - sent
                    pending.remove(c)
                    c.close()
                    break
            waiting += pending  # handed over: they wait in the hung worker's socket
        assert refused is not None, f"{len(waiting)} upgrades handed to a hung worker, none refused"
        assert refused.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 5\r\n" in refused, refused[:200]
        assert elapsed < 0.5, f"answered {elapsed:.2f} s after the batch was sent"
        assert waiting, "nothing was handed over"
        log = open(os.path.join(harness.run_dir, "httpd.log")).read()
        assert "PSDM0008" in log and "connect failed" in log and sock in log
    finally:
        for c in waiting:
            c.close()
        hung.close()


def test_bad_directive_values_fail_apache2_t(harness):
    import subprocess as sp
    from harness import APACHE2
    for directive, value in [("PsdmSocketUser", "cookie:x"), ("PsdmSocketTimeout", "soon"),
                             ("PsdmSocketAllowOrigin", "evil.example"), ("PsdmSocketGroups", "remote-user")]:
        conf = os.path.join(harness.run_dir, "bad.conf")
        with open(conf, "w") as f:
            f.write(harness.httpd_config(8, f"{directive} {value}\n"))
        r = sp.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
        assert r.returncode != 0 and directive in r.stderr and value in r.stderr, r.stderr


# ---- the replay limit: what the worker can replay into lws, the module checks first

REPLAY_MAX = 2048  # PSDM_HS_REPLAY_MAX, handoff/handoff_proto.h
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def masked(opcode, payload):
    """A masked client frame with a payload under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def early_frames(size):
    """Exactly `size` bytes of client frames: the namespace connect, then pings."""
    out = masked(1, b"40/psdm_ws,")
    while len(out) < size:
        left = size - len(out)
        assert left >= 6, "room for one empty ping at least"
        # A ping is 6 + n bytes (n <= 125); never leave less than an empty ping's 6.
        n = left - 6 if left <= 6 + 125 else min(125, left - 12)
        out += masked(9, b"p" * n)
    assert len(out) == size, (len(out), size)
    return out


def upgrade_with_early_data(httpd, uri, early):
    """Sends the upgrade request and `early` in one write, as a client that does not wait
    for the 101 would; returns (status code, body or the bytes after the 101 headers, socket)."""
    import socket
    host = f"127.0.0.1:{httpd.port}"
    s = socket.create_connection(("127.0.0.1", httpd.port), timeout=10)
    s.sendall(f"GET {uri} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode() + early)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"closed before the response headers: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), head, rest, s


def replay_len(httpd, uri):
    """The length of the upgrade request the module has the worker replay for ours
    (psdm_handoff_build_upgrade: no Origin, no subprotocol), early data not included."""
    return len(f"GET {uri} HTTP/1.1\r\nHost: 127.0.0.1:{httpd.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n")


def server_texts(s, rest, want):
    """Reads server frames until a text frame starting with `want`; returns the texts seen."""
    import struct
    texts, buf = [], rest
    while True:
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F if buf[1] & 0x7F < 126 else 2):
            buf += s.recv(65536)
        n, head = buf[1] & 0x7F, 2
        if n == 126:
            n, head = struct.unpack(">H", buf[2:4])[0], 4
        while len(buf) < head + n:
            buf += s.recv(65536)
        opcode, payload, buf = buf[0] & 0x0F, buf[head:head + n], buf[head + n:]
        if opcode == 1:
            texts.append(payload.decode())
            if texts[-1].startswith(want):
                return texts
        assert opcode in (1, 10), f"unexpected frame opcode {opcode}"  # text or pong


def test_early_data_exactly_at_the_replay_limit_is_handed_over(harness):
    broker, worker, httpd, _ = start_stack(harness)
    uri = PATH + "?EIO=4&transport=websocket"
    early = early_frames(REPLAY_MAX - replay_len(httpd, uri))
    status, head, rest, s = upgrade_with_early_data(httpd, uri, early)
    try:
        assert status == 101, head
        texts = server_texts(s, rest, "40/psdm_ws,")  # the worker read every early byte
        assert texts[0].startswith("0{")
    finally:
        s.close()
    worker.wait_log(r"client \d+ connected \(user 'alice'")


@pytest.mark.parametrize("over", ["early-data", "upgrade-request"])
def test_over_the_replay_limit_is_refused_by_apache_not_the_worker(harness, over):
    broker, worker, httpd, _ = start_stack(harness)
    uri = PATH + "?EIO=4&transport=websocket"
    if over == "early-data":  # one byte more than the test above
        early, want = early_frames(REPLAY_MAX - replay_len(httpd, uri) + 1), (
            413, "too much data sent before the WebSocket handshake")
    else:  # no early data, one byte too many in the request itself
        uri += "&pad=" + "x" * (REPLAY_MAX + 1 - replay_len(httpd, uri + "&pad="))
        assert replay_len(httpd, uri) == REPLAY_MAX + 1
        early, want = b"", (431, "upgrade request too large to hand over")
    status, head, rest, s = upgrade_with_early_data(httpd, uri, early)
    try:
        while len(rest) < len(want[1]) + 1:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        s.close()
    assert (status, rest.decode()) == (want[0], want[1] + "\n"), head
    with open(os.path.join(harness.run_dir, "httpd.log")) as f:
        lines = [line for line in f if "PSDM0011" in line]
    assert len(lines) == 1 and f"exceed the {REPLAY_MAX} bytes" in lines[0], lines
    assert "refused handoff" not in worker.log_text()  # the worker never saw it
    raw = RawEio(httpd.url)  # and the next one goes through
    raw.connect_ns()
    raw.close()


# ---- identity: names stay whole but for the realms the site strips (PsdmSocketStripRealm)

ACL_ALICE_ONLY = "xpptut15    alice\n"


def psdm_lines(harness):
    """The module's log lines (one per refusal)."""
    with open(os.path.join(harness.run_dir, "httpd.log")) as f:
        return [line for line in f if "PSDM0" in line]


def users_seen(worker):
    """The users of the connections the worker took, in order."""
    import re
    return re.findall(r"client \d+ connected \(user '([^']*)'", worker.log_text())


def join_ack(raw, room="xpptut15"):
    raw.connect_ns()
    raw.send(f'42/psdm_ws,1["join","{room}"]')
    return raw.next_text()


def start_with_acl(harness, body, acl=ACL_ALICE_ONLY):
    """Broker, a worker with a file ACL, and Apache with `body` (its own locations)."""
    path = os.path.join(harness.run_dir, "rooms.acl")
    with open(path, "w") as f:
        f.write(acl)
    broker = harness.start_broker(topics=["elog"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock, authz=f"file:{path}")
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 2\n" + body, mpm=MPM["name"])
    return worker, httpd


# account as Apache authenticates it -> the user the worker sees (None: refused by Apache)
ACCOUNTS = [
    ("alice", "alice"),
    ("alice@evil", "alice@evil"),  # not a stripped realm: another account, not alice
    ("alice@SLAC.STANFORD.EDU", "alice"),  # the stripped realm: the site's alice
    ("carol@SLAC.STANFORD.EDU", "carol"),
    ("bob@x@SLAC.STANFORD.EDU", "bob@x"),  # one trailing realm only, never "bob"
    ("alice@slac.stanford.edu", "alice@slac.stanford.edu"),  # realms are case-sensitive
]
ALLOWED = '43/psdm_ws,1[]'
FORBIDDEN = '43/psdm_ws,1[{"error":"forbidden","room":"xpptut15"}]'


def test_basic_auth_accounts_keep_their_realm_unless_the_site_strips_it(harness):
    import base64
    import hashlib
    accounts = [a for a, _ in ACCOUNTS] + ["@SLAC.STANFORD.EDU"]
    htpasswd = os.path.join(harness.run_dir, "htpasswd")
    with open(htpasswd, "w") as f:  # {SHA}: the one scheme Python writes without a module
        for a in accounts:
            f.write(f"{a}:{{SHA}}{base64.b64encode(hashlib.sha1(b'pw-' + a.encode()).digest()).decode()}\n")
    modules = "".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"
                      for m in ("auth_basic", "authn_core", "authn_file", "authz_user"))
    inner = (f"  AuthType Basic\n  AuthName psdm\n  AuthBasicProvider file\n  AuthUserFile {htpasswd}\n"
             "  Require valid-user\n  PsdmSocketStripRealm SLAC.STANFORD.EDU\n")
    worker, httpd = start_with_acl(harness, modules + LOCATION.format(inner=inner))

    def basic(account):
        return "Basic " + base64.b64encode(f"{account}:pw-{account}".encode()).decode()

    for account, user in ACCOUNTS:
        raw = RawEio(httpd.url, headers=[f"Authorization: {basic(account)}"])
        assert join_ack(raw) == (ALLOWED if user == "alice" else FORBIDDEN), account
        raw.close()
    assert users_seen(worker) == [user for _, user in ACCOUNTS]
    # A name that is only a stripped realm is no user; Basic authenticated it: 403.
    status, body, _ = get(httpd.url + PATH + "?EIO=4&transport=websocket",
                          upgrade_headers(Authorization=basic("@SLAC.STANFORD.EDU")))
    assert (status, body) == (403, "no authenticated user\n")
    lines = psdm_lines(harness)
    assert len(lines) == 1 and "PSDM0002" in lines[0] and "r->user (remote-user)" in lines[0], lines


def test_env_identities_keep_their_realm_unless_the_site_strips_it(harness):
    # WebAuth style: one location per identity, as mod_webauth would set WEBAUTH_USER.
    accounts = ACCOUNTS + [("@SLAC.STANFORD.EDU", None)]
    body = "PsdmSocketUser env:WEBAUTH_USER\nPsdmSocketStripRealm OTHER.REALM SLAC.STANFORD.EDU\n" + "".join(
        f'<Location "/u{i}_socketio/">\n  SetHandler psdm-socket\n  SetEnv WEBAUTH_USER "{a}"\n</Location>\n'
        for i, (a, _) in enumerate(accounts))
    worker, httpd = start_with_acl(harness, body)
    for i, (account, user) in enumerate(ACCOUNTS):
        raw = RawEio(httpd.url, path=f"/u{i}_socketio/socket.io/")
        assert join_ack(raw) == (ALLOWED if user == "alice" else FORBIDDEN), account
        raw.close()
    assert users_seen(worker) == [user for _, user in ACCOUNTS]
    # Nothing left once the realm is stripped: no user, 401.
    status, body, _ = get(f"{httpd.url}/u{len(ACCOUNTS)}_socketio/socket.io/?EIO=4&transport=websocket",
                          upgrade_headers())
    assert (status, body) == (401, "no authenticated user\n")
    lines = psdm_lines(harness)
    assert len(lines) == 1 and "PSDM0002" in lines[0] and "variable WEBAUTH_USER" in lines[0], lines


def test_realm_and_origin_directives_refuse_bad_values_in_apache2_t(harness):
    import subprocess as sp
    from harness import APACHE2
    for directive, value in [("PsdmSocketStripRealm", "alice@SLAC.STANFORD.EDU"),
                             ("PsdmSocketAllowOrigin", "https://pswww.example.org/lgbk"),
                             ("PsdmSocketAllowOrigin", "https://*.example.org")]:
        conf = os.path.join(harness.run_dir, "bad.conf")
        with open(conf, "w") as f:
            f.write(harness.httpd_config(8, f"{directive} {value}\n"))
        r = sp.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
        assert r.returncode != 0 and directive in r.stderr and value in r.stderr, r.stderr


# ---- Origin: by default the virtual host's own names, never the client's Host header

def upgrade_status(httpd, uri, headers):
    """The status line's code of an upgrade request sent with exactly these headers
    (Host included); the connection is closed right after the response head."""
    import socket
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", httpd.port), timeout=10) as s:
        s.sendall(f"GET {uri} HTTP/1.1\r\n{head}\r\n".encode())
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, f"closed before the status line: {buf!r}"
            buf += chunk
    return int(buf.split(b" ", 2)[1])


def test_dns_rebinding_host_is_not_an_origin(harness):
    broker, worker, httpd, _ = start_stack(harness)
    uri = PATH + "?EIO=4&transport=websocket"
    # evil.example resolves to this server: Host and Origin agree, and both are the attacker's.
    status, body, _ = get(httpd.url + uri, upgrade_headers(Host="evil.example", Origin="http://evil.example"))
    assert (status, body) == (403, "origin not allowed\n")
    lines = psdm_lines(harness)
    assert len(lines) == 1 and "PSDM0004" in lines[0] and "Origin http://evil.example is not allowed" in lines[0]
    assert f"http://127.0.0.1:{httpd.port}" in lines[0]  # names what it expected
    host = f"evil.example:{httpd.port}"
    assert get(httpd.url + uri, upgrade_headers(Host=host, Origin=f"http://{host}"))[0] == 403
    # The configured ServerName (127.0.0.1:PORT) is the origin, whatever the Host.
    ours = f"http://127.0.0.1:{httpd.port}"
    assert upgrade_status(httpd, uri, upgrade_headers(Host=f"127.0.0.1:{httpd.port}", Origin=ours)) == 101
    assert upgrade_status(httpd, uri, upgrade_headers(Host="evil.example", Origin=ours)) == 101
    worker.wait_log(r"client 2 connected \(user 'alice'")


def test_origin_is_the_vhost_servername_or_an_alias(harness):
    from harness import free_port
    port = free_port()
    broker = harness.start_broker(topics=["elog"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock)
    httpd = harness.start_httpd(
        f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 2\n<VirtualHost *:{port}>\n"
        f"  ServerName pages.example:{port}\n  ServerAlias alias.example *.wild.example\n"
        + LOCATION.format(inner=WEBAUTH) + "</VirtualHost>\n", mpm=MPM["name"], port=port)
    uri = PATH + "?EIO=4&transport=websocket"
    for origin, want in [(f"http://pages.example:{port}", 101),  # ServerName
                         (f"http://alias.example:{port}", 101),  # ServerAlias
                         (f"http://ws.wild.example:{port}", 101),  # ServerAlias wildcard
                         (f"HTTP://ALIAS.example:{port}", 101),
                         ("http://alias.example", 403),  # another port
                         (f"https://alias.example:{port}", 403),  # another scheme
                         (f"http://127.0.0.1:{port}", 403),  # the main server's name, not this vhost's
                         (f"http://wild.example:{port}", 403),
                         (f"http://evil.example:{port}", 403)]:
        headers = upgrade_headers(Host=f"alias.example:{port}", Origin=origin)
        assert upgrade_status(httpd, uri, headers) == want, origin
    worker.wait_log(r"client 4 connected \(user 'alice'")
    assert len(psdm_lines(harness)) == 5 and all("PSDM0004" in line for line in psdm_lines(harness))


def test_explicit_allow_origin_still_overrides(harness):
    extra = "PsdmSocketAllowOrigin https://pswww.example.org\n"
    broker, worker, httpd, _ = start_stack(harness, extra_conf=extra)
    uri = PATH + "?EIO=4&transport=websocket"
    ours = f"http://127.0.0.1:{httpd.port}"  # the ServerName: not listed, so refused
    assert get(httpd.url + uri, upgrade_headers(Origin=ours))[0] == 403
    assert "one of PsdmSocketAllowOrigin" in psdm_lines(harness)[0]
    assert upgrade_status(httpd, uri, upgrade_headers(Host="x", Origin="https://pswww.example.org")) == 101


# ---- strict upgrades: Apache answers what the worker would refuse

SOCKETIO_REFUSALS = [
    # (uri, extra headers, status, body line, log tag)
    (PATH + "?EIO=4&transport=websocket", {"Sec-WebSocket-Version": "8"}, 426,
     "unsupported WebSocket version (expected 'Sec-WebSocket-Version: 13')", "PSDM0001"),
    (PATH + "?EIO=4&transport=websocket", {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZR=="}, 400,
     "bad WebSocket handshake (Sec-WebSocket-Key is not the base64 of 16 bytes)", "PSDM0001"),
    (PATH + "?EIO=4&transport=websocket", {"Sec-WebSocket-Key": "c2hvcnQ="}, 400,
     "bad WebSocket handshake (Sec-WebSocket-Key is not the base64 of 16 bytes)", "PSDM0001"),
    (PATH + "?EIO=5&transport=websocket", {}, 400, "unsupported Engine.IO version (expected EIO=3 or EIO=4)",
     "PSDM0012"),
    (PATH + "?transport=websocket", {}, 400, "unsupported Engine.IO version (expected EIO=3 or EIO=4)", "PSDM0012"),
    (PATH + "?EIO=4&transport=polling", {}, 400, "Socket.IO transport unknown (expected transport=websocket)",
     "PSDM0012"),
    (PATH + "?EIO=4&transport=websocket&sid=abc", {}, 400,
     "Socket.IO session id unknown (a websocket handshake has no sid)", "PSDM0012"),
    (PATH + "?EIO=4&transport=websocket&x=%zz", {}, 400, "bad Socket.IO handshake (malformed %-escape in the query)",
     "PSDM0012"),
    ("/lgbk_socketio/other/?EIO=4&transport=websocket", {}, 400,
     "not a Socket.IO endpoint (the path must end in /socket.io/)", "PSDM0012"),
]


@pytest.mark.parametrize("uri, extra, status, line, tag", SOCKETIO_REFUSALS,
                         ids=["version-8", "key-17-bytes", "key-5-bytes", "eio-5", "no-eio", "polling", "sid",
                              "bad-escape", "wrong-path"])
def test_upgrades_the_worker_would_refuse_are_answered_by_apache(harness, uri, extra, status, line, tag):
    broker, worker, httpd, _ = start_stack(harness)
    got, body, hdrs = get(httpd.url + uri, upgrade_headers(**extra))
    assert (got, body) == (status, line + "\n")
    if status == 426:
        assert hdrs.get("Sec-WebSocket-Version") == "13" and hdrs.get("Upgrade") == "websocket", hdrs
    lines = psdm_lines(harness)
    assert len(lines) == 1 and tag in lines[0] and line in lines[0], lines
    assert uri.split("?")[0] in lines[0]  # where
    assert "handshake of client" not in worker.log_text() and "refused upgrade" not in worker.log_text()
    raw = RawEio(httpd.url)  # and a good one still goes through
    raw.connect_ns()
    raw.close()
