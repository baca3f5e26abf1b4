"""mod_psdm_socket as an ops team runs it: a wss:// relay that lives as long as the
websocket on a stock Debian Apache (mod_reqtimeout loaded), its end logged; the
module's counters on mod_status's page, shared by every Apache child; and the
conf/ examples, which must pass `apache2 -t` and must change nothing on a virtual
host that does not opt in."""
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import time

import pytest

import stack
from harness import APACHE2, APACHE_MODULES, BUILD, REPO, HarnessError, free_port
from rawws import RawEio
from test_apache import make_cert

PATH = "/lgbk_socketio/socket.io/"
LOCATION = ('<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n'
            "  SetEnv WEBAUTH_USER alice\n  PsdmSocketUser env:WEBAUTH_USER\n</LocationMatch>\n")
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

# Debian 12's /etc/apache2/mods-available/reqtimeout.conf (package apache2), used when
# the stock file is not installed (the project needs only apache2-bin).
STOCK_REQTIMEOUT = "/etc/apache2/mods-available/reqtimeout.conf"
DEBIAN_REQTIMEOUT = "RequestReadTimeout header=20-40,minrate=500\nRequestReadTimeout body=10,minrate=500\n"


def load(*modules):
    return "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in modules)


def reqtimeout_conf(harness):
    """LoadModule reqtimeout + Debian's default reqtimeout.conf (the stock file if present)."""
    path = STOCK_REQTIMEOUT
    if not os.path.exists(path):
        path = os.path.join(harness.run_dir, "reqtimeout.conf")
        with open(path, "w") as f:
            f.write(DEBIAN_REQTIMEOUT)
    return load("reqtimeout") + f"Include {path}\n"


def ssl_conf(harness):
    key, crt = make_cert(harness.run_dir)
    return load("ssl", "socache_shmcb") + f"SSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n"


def httpd_log(harness):
    with open(os.path.join(harness.run_dir, "httpd.log"), errors="replace") as f:
        return f.read()


def wait_httpd_log(harness, httpd, pattern, timeout=10):
    """Waits until Apache's error log matches regex `pattern`; returns the match."""
    rx, found = re.compile(pattern), []

    def ready():
        m = rx.search(httpd_log(harness))
        if m:
            found.append(m)
        return bool(m)
    harness.wait_for(httpd.proc, ready, f"httpd logging /{pattern}/", timeout)
    return found[0]


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def msg(room, seq):
    return json.dumps({"experiment_name": room, "seq": seq})


# ---- 1. a wss:// relay lives as long as the websocket, and its end is logged


def next_event_until(client, deadline):
    """The client's next event if one comes before `deadline` (time.monotonic()), else None."""
    try:
        e = client._q.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None
    client.events.append(e)
    return e

HOLD_S = 65  # past mod_reqtimeout's body=10 + minrate and the 25 s Engine.IO ping


def test_wss_relay_outlives_mod_reqtimeout_and_its_end_is_logged(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    stack.start_worker(harness, broker, sock)
    httpd = harness.start_httpd(reqtimeout_conf(harness) + ssl_conf(harness) + "SSLEngine on\n"
                                + f"PsdmSocketWorker unix:{sock}\n" + LOCATION, https=True)
    rounds = HOLD_S // 5 + 1
    client = harness.start_client("node4", httpd.url, path=PATH, join=["xpptut15"], count=rounds,
                                  timeout_ms=(HOLD_S + 60) * 1000, extra=["--insecure", "--no-reconnect"])
    client.wait("ready")
    t0 = time.monotonic()
    # One message every 5 s; between them, wait for the events that must not come (a
    # disconnect, a reconnect). The client exits once it has them all ("done").
    for seq in range(1, rounds + 1):
        broker.produce("elog", [msg("xpptut15", seq)])
        assert client.wait("msg", timeout=20)["data"]["seq"] == seq
        if seq < rounds:
            e = next_event_until(client, t0 + 5 * seq)
            assert e is None, f"relay cut after {time.monotonic() - t0:.1f} s: {e}"
    held = time.monotonic() - t0
    client.wait("done")
    assert held >= HOLD_S - 1, held
    assert [e["ev"] for e in client.events].count("connect") == 1
    # The client is gone: the relay's end, at info level, with reason, duration and bytes.
    m = wait_httpd_log(harness, httpd, r"\[psdm_socket:info\] .*PSDM0010: relay of /lgbk_socketio/socket\.io/ "
                       r"for user alice ended \((client closed|worker closed)\) after (\d+\.\d) s: "
                       r"(\d+) bytes from the client, (\d+) bytes from the worker")
    print(f"\nheld {held:.1f} s; {m.group(0)}")
    assert float(m.group(2)) >= HOLD_S - 1
    assert int(m.group(3)) > 0 and int(m.group(4)) > 0
    assert "read timeout" not in httpd_log(harness)  # mod_reqtimeout never fired


# ---- 2. the module's counters on mod_status's page, shared by every child


def status_auto(port):
    """/server-status?auto as {key: value} for the module's lines."""
    status, body = get(port, "/server-status?auto")
    assert status == 200, body
    return {k: v.strip() for k, _, v in (line.partition(":") for line in body.splitlines())
            if k.startswith("PsdmSocket")}


def wait_status(harness, httpd, want, timeout=10):
    """Waits until every key of `want` has its value on /server-status?auto; returns them all."""
    seen = {}

    def ready():
        seen.update(status_auto(httpd.port))
        return all(seen.get(k) == str(v) for k, v in want.items())
    try:
        harness.wait_for(httpd.proc, ready, f"server-status showing {want}", timeout)
    except HarnessError as e:
        raise AssertionError(f"{e}\nlast seen: {seen}") from None
    return seen


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_server_status_shows_handoffs_refusals_and_open_relays(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    stack.start_worker(harness, broker, sock)
    tls_port = free_port()
    tls_vhost = (ssl_conf(harness) + f"Listen 127.0.0.1:{tls_port}\n<VirtualHost 127.0.0.1:{tls_port}>\n"
                 f"  ServerName 127.0.0.1:{tls_port}\n  SSLEngine on\n</VirtualHost>\n")
    httpd = harness.start_httpd(load("status") + '<Location "/server-status">\n  SetHandler server-status\n'
                                "</Location>\n" + tls_vhost + f"PsdmSocketWorker unix:{sock}\n" + LOCATION, mpm=mpm)
    zero = status_auto(httpd.port)
    assert zero["PsdmSocketHandoffs"] == "0" and zero["PsdmSocketRelaysOpen"] == "0"
    assert zero["PsdmSocketRefused"] == "0" and zero["PsdmSocketRefusedPSDM0004"] == "0"

    handed = RawEio(httpd.url)  # one handoff (plaintext: the descriptor is passed)
    handed.connect_ns()
    status, _ = get(httpd.port, PATH + "?EIO=4&transport=websocket", dict(UPGRADE, Origin="https://evil.example"))
    assert status == 403  # one refusal: PSDM0004
    relayed = RawEio(f"https://127.0.0.1:{tls_port}", origin=f"https://127.0.0.1:{tls_port}")  # one open relay
    try:
        relayed.connect_ns()
        seen = wait_status(harness, httpd, {"PsdmSocketHandoffs": 1, "PsdmSocketRelays": 1, "PsdmSocketRelaysOpen": 1,
                                            "PsdmSocketRefused": 1, "PsdmSocketRefusedPSDM0004": 1})
        assert all(v == "0" for k, v in seen.items() if k.startswith("PsdmSocketRefusedPSDM") and k[-4:] != "0004")
        # The HTML page has the same numbers.
        status, page = get(httpd.port, "/server-status")
        assert status == 200 and "<h2>mod_psdm_socket</h2>" in page
        assert "Handoffs (connections passed to the worker): 1" in page and "1 started, 1 open" in page
        assert "<tr><td>PSDM0004</td><td>1</td><td>Origin not allowed (403)</td></tr>" in page
    finally:
        relayed.close()
        handed.close()
    seen = wait_status(harness, httpd, {"PsdmSocketRelaysOpen": 0, "PsdmSocketRelays": 1})
    assert int(seen["PsdmSocketRelayBytesFromClients"]) > 0 and int(seen["PsdmSocketRelayBytesFromWorker"]) > 0
    wait_httpd_log(harness, httpd, r"PSDM0010: relay of \S+ for user alice ended \((client|worker) closed\)")
    # A graceful restart (logrotate's, a2enmod's reload) keeps the counters.
    os.kill(httpd.proc.pid, signal.SIGUSR1)
    harness.wait_for(httpd.proc, lambda: httpd_log(harness).count("resuming normal operations") == 2,
                     "httpd restarting gracefully", 15)
    wait_status(harness, httpd, {"PsdmSocketHandoffs": 1, "PsdmSocketRelays": 1, "PsdmSocketRefusedPSDM0004": 1})


# ---- 3. the conf/ examples: apache2 -t, and nothing changes until a site opts in

CONF = os.path.join(REPO, "conf")
# What Debian's a2enmod enables along with a module (the "Depends:" of its .load file).
DEPENDS = {"ssl": ["socache_shmcb"], "proxy_http": ["proxy"]}
# Loaded by every harness config (httpd_config) already.
HARNESS_MODULES = {"authz_core", "headers", "env", "alias", "mime", "dir"}
NOT_IN_DEBIAN_12 = {"webauth"}  # the legacy example's SSO


def a2enmod_line(text):
    """The modules an example says to enable (its "a2enmod ..." comment line)."""
    m = re.search(r"^#\s+a2enmod ([a-z0-9_ ]+)$", text, re.M)
    assert m, "the example names the modules to enable in an 'a2enmod ...' comment"
    return m.group(1).split()


def module_lines(text):
    """LoadModule lines for an example's a2enmod line (and their Debian dependencies);
    our module from the build, the rest from Debian's module directory. Returns (lines,
    modules not installed)."""
    lines, missing = "", set()
    for name in a2enmod_line(text):
        for m in DEPENDS.get(name, []) + [name]:
            if m in HARNESS_MODULES or f"{m}_module" in lines:
                continue
            if m == "psdm_socket":
                with open(os.path.join(CONF, "psdm_socket.load")) as f:  # the .load as shipped, our build's .so
                    lines += re.sub(r"/\S+/mod_psdm_socket\.so", f"{BUILD}/mod_psdm_socket.so",
                                    "".join(x for x in f if x.startswith("LoadModule")))
            elif os.path.exists(f"{APACHE_MODULES}/mod_{m}.so"):
                lines += load(m)
            else:
                missing.add(m)
    return lines, missing


def conf_file(harness, name, subs=()):
    """conf/NAME with each (old, new) of subs replaced, written into the run directory."""
    with open(os.path.join(CONF, name)) as f:
        text = f.read()
    for old, new in subs:
        assert old in text, f"{name} no longer contains {old!r}"
        text = text.replace(old, new)
    path = os.path.join(harness.run_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def module_conf(harness, sock="/run/psdm_socket/handoff.sock"):
    """mods-available/psdm_socket.conf (its worker socket replaced) and the location
    snippet (the client's directory replaced); returns (Include line, snippet path)."""
    conf = conf_file(harness, "psdm_socket.conf", [("unix:/run/psdm_socket/handoff.sock", f"unix:{sock}")])
    snippet = conf_file(harness, "psdm_socket-location.conf", [("/usr/share/psdm_socket/js", f"{REPO}/js")])
    return f"Include {conf}\n", snippet


def site_example(harness, name, vhost="*:443", server_name="pswww.example.org", sock="/run/psdm_socket/handoff.sock",
                 extra=()):
    """The example with its placeholders (and each (old, new) of extra) replaced by what
    exists here; returns (its text, the config body: modules, psdm_socket.conf, the site)."""
    with open(os.path.join(CONF, name)) as f:
        text = f.read()
    key, crt = make_cert(harness.run_dir)
    include, snippet = module_conf(harness, sock)
    subs = [("<VirtualHost *:443>", f"<VirtualHost {vhost}>"),
            ("ServerName pswww.example.org", f"ServerName {server_name}"), ("/etc/ssl/certs/pswww.pem", crt), ("/etc/ssl/private/pswww.key", key),
            ("Include conf-available/psdm_socket-location.conf", f"Include {snippet}")]
    site = conf_file(harness, name, subs + list(extra))
    modules, missing = module_lines(text)
    assert missing <= NOT_IN_DEBIAN_12, f"{name}: modules not installed: {missing}"
    return text, modules + include + f"Include {site}\n"


# A provider, secret and passphrase configtest accepts (the provider is only asked at a login).
OIDC_DUMMY = [("https://sso.example.org/realms/pswww/.well-known/openid-configuration",
               "http://127.0.0.1:9/.well-known/openid-configuration"),
              ("OIDCClientSecret        CHANGE-ME", "OIDCClientSecret        test-secret"),
              ("OIDCCryptoPassphrase    CHANGE-ME-TOO", "OIDCCryptoPassphrase    test-passphrase")]


def basic_paths(harness, htpasswd):
    return [("/etc/apache2/pswww.htpasswd", htpasswd), ("/var/www/pswww", harness.run_dir)]


def apache2_t(harness, body, port=8):
    conf = os.path.join(harness.run_dir, "check.conf")
    with open(conf, "w") as f:
        f.write(harness.httpd_config(port, body, load_module=False))
    return subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)


@pytest.mark.parametrize("name", ["site-example-openidc.conf", "site-example-basic.conf",
                                  "site-example-webauth.conf"])
def test_site_examples_pass_apache2_t(harness, name):
    extra = {"site-example-openidc.conf": OIDC_DUMMY,
             "site-example-basic.conf": basic_paths(harness, os.path.join(harness.run_dir, "htpasswd"))}.get(name, [])
    text, body = site_example(harness, name, extra=extra)
    r = apache2_t(harness, body)
    assert r.returncode == 0 and "Syntax OK" in r.stderr, r.stderr
    # The site opts in with the snippet; the module's own conf takes no location.
    assert "Include conf-available/psdm_socket-location.conf" in text
    with open(os.path.join(CONF, "psdm_socket.conf")) as f:
        module = "".join(line for line in f if not line.lstrip().startswith("#"))
    assert "Location" not in module and "SetHandler" not in module and "Alias" not in module


def test_module_enabled_without_the_snippet_takes_no_upgrade(harness):
    """a2enmod psdm_socket alone (the .load and psdm_socket.conf) changes nothing on a
    virtual host; the one that includes the snippet hands its upgrades over."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock)
    include, snippet = module_conf(harness, sock)
    port2 = free_port()
    opted = (f"Listen 127.0.0.1:{port2}\n<VirtualHost 127.0.0.1:{port2}>\n  ServerName 127.0.0.1:{port2}\n"
             f"  Include {snippet}\n  SetEnv WEBAUTH_USER carol\n  PsdmSocketUser env:WEBAUTH_USER\n</VirtualHost>\n")
    httpd = harness.start_httpd(include + opted)
    uri = PATH + "?EIO=4&transport=websocket"
    # The main server did not opt in: the core answers (no such file), the worker sees nothing.
    assert get(httpd.port, uri, UPGRADE)[0] == 404
    assert get(httpd.port, "/psdm_socket/websocket_client.js")[0] == 404
    assert get(httpd.port, PATH + "?EIO=4&transport=polling")[0] == 404
    assert "PSDM" not in httpd_log(harness)
    # The virtual host that includes the snippet: handed over, client script served.
    status, script = get(port2, "/psdm_socket/websocket_client.js")
    assert status == 200 and "WebSocketConnection" in script
    raw = RawEio(f"http://127.0.0.1:{port2}")
    raw.connect_ns()
    assert worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1) == "carol"
    raw.close()
    assert get(httpd.port, uri, UPGRADE)[0] == 404  # and still nothing on the main server
    assert len(re.findall(r"connected \(user", worker.log_text())) == 1


def test_basic_site_example_hands_over_authenticated_wss(harness):
    """conf/site-example-basic.conf as written (placeholders aside), served for real:
    a wss:// client with the site's Basic credentials reaches the worker as that user;
    without them, 401."""
    import base64
    import hashlib
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock)
    htpasswd = os.path.join(harness.run_dir, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write(f"alice:{{SHA}}{base64.b64encode(hashlib.sha1(b'pw-alice').digest()).decode()}\n")
    tls = free_port()
    _, body = site_example(harness, "site-example-basic.conf", vhost=f"127.0.0.1:{tls}",
                           server_name=f"127.0.0.1:{tls}", sock=sock, extra=basic_paths(harness, htpasswd))
    harness.start_httpd(body + f"Listen 127.0.0.1:{tls}\n")
    url, origin = f"https://127.0.0.1:{tls}", f"https://127.0.0.1:{tls}"
    with pytest.raises(Exception, match="401"):
        RawEio(url, origin=origin)
    auth = "Authorization: Basic " + base64.b64encode(b"alice:pw-alice").decode()
    raw = RawEio(url, origin=origin, headers=[auth])
    raw.connect_ns()
    assert worker.wait_log(r"client \d+ connected \(user '([^']*)'").group(1) == "alice"
    raw.close()


def test_openidc_site_example_answers_401_to_an_upgrade_without_a_session(harness):
    """conf/site-example-openidc.conf served for real (the provider is never asked): an
    upgrade without a session gets 401, not a redirect a websocket cannot follow, and
    nothing reaches the worker."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    worker = stack.start_worker(harness, broker, sock)
    tls = free_port()
    redirect = ("https://pswww.example.org/oidc/redirect", f"https://127.0.0.1:{tls}/oidc/redirect")
    _, body = site_example(harness, "site-example-openidc.conf", vhost=f"127.0.0.1:{tls}",
                           server_name=f"127.0.0.1:{tls}", sock=sock, extra=OIDC_DUMMY + [redirect])
    harness.start_httpd(body + f"Listen 127.0.0.1:{tls}\n")
    with pytest.raises(Exception, match="401"):
        RawEio(f"https://127.0.0.1:{tls}", origin=f"https://127.0.0.1:{tls}")
    assert "PSDM" not in httpd_log(harness)  # mod_auth_openidc answered, before the module
    assert "connected (user" not in worker.log_text()
