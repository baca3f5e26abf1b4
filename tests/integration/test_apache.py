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
WEBAUTH = "  SetEnv WEBAUTH_USER alice@SLAC.STANFORD.EDU\n  PsdmSocketUser env:WEBAUTH_USER\n"


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
    line = worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1)
    assert line == "alice"  # realm dropped, client headers ignored
    raw.close()


def test_header_identity_from_a_trusted_front_proxy(harness):
    inner = "  PsdmSocketUser header:X-Vouch-Idp-Claims-Name\n"
    broker, worker, httpd, _ = start_stack(harness, inner=inner)
    raw = RawEio(httpd.url, headers=["X-Vouch-Idp-Claims-Name: bob@example.org"])
    raw.connect_ns()
    assert worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1) == "bob"
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
    (upgrade_headers(**{"Sec-WebSocket-Version": "8"}), 400,
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
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock, max_connections=1)
    httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\n" + LOCATION.format(inner=WEBAUTH), mpm=MPM["name"])
    first = RawEio(httpd.url)
    status, _, _ = get(httpd.url + PATH + "?EIO=4&transport=websocket", upgrade_headers())
    assert status == 503
    assert "refused_capacity" in open(os.path.join(harness.run_dir, "httpd.log")).read()
    worker.wait_log(r"refused handoff from pid \d+ .*refused_capacity")
    first.connect_ns()  # the one already in is unaffected
    first.close()


def test_a_worker_that_never_answers_is_503_within_the_timeout(harness):
    # A Unix socket that accepts and then says nothing: a hung worker.
    import socket
    import time
    sock = os.path.join(harness.sock_dir, "hung.sock")
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(sock)
    os.chmod(sock, 0o666)
    hung.listen(16)
    try:
        httpd = harness.start_httpd(f"PsdmSocketWorker unix:{sock}\nPsdmSocketTimeout 500ms\n"
                                    + LOCATION.format(inner=WEBAUTH), mpm=MPM["name"])
        t0 = time.monotonic()
        status, _, _ = get(httpd.url + PATH + "?EIO=4&transport=websocket", upgrade_headers())
        elapsed = time.monotonic() - t0
        assert status == 503
        assert elapsed < 5, f"answered after {elapsed:.1f} s"
        log = open(os.path.join(harness.run_dir, "httpd.log")).read()
        assert "PSDM0008" in log and "answer failed" in log and sock in log
    finally:
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
