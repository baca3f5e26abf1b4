"""The whole stack on loopback, as `make demo` runs it and the browser tests use it:
the Kafka-protocol broker, psdm_socketd behind its handoff socket, and Apache with
mod_psdm_socket serving the browser client (js/) and the demo pages (js/demo/)."""
import os
import types
import urllib.request

from harness import APACHE_MODULES, BUILD, REPO, free_port, worker_config

DEMO_USER = "demo"


def peer():
    """The user Apache's children run as: www-data when we run as root."""
    return "www-data" if os.geteuid() == 0 else str(os.geteuid())


def start_worker(h, broker, sock, authz="allow-all", name="worker", peers=None, wait_kafka=True, **extra):
    """psdm_socketd with its handoff socket at `sock` (peers: who may hand over,
    default Apache's user) and a direct listener; extra keys override the defaults.
    Without wait_kafka, returns once it listens (its partitions may not be assigned yet)."""
    keys = dict(kafka__bootstrap__servers=broker.bootstrap, kafka__auto__offset__reset="earliest",
                kafka__fetch__wait__max__ms="10", topics="elog,experiments", authz=authz,
                handoff_socket=sock, handoff_socket_mode="0666", handoff_allowed_peers=peers or peer(),
                listen="127.0.0.1:0", log_level="debug")
    keys.update(extra)
    return h.start_worker(worker_config(**keys), name=name, wait_kafka=wait_kafka)


ADMIN_PATH = "/psdm_admin/"
ADMIN_RX = r"admin listener on 127\.0\.0\.1:(\d+)"


def apache_body(sock, user=DEMO_USER, admin_port=None):
    """Apache config: the handoff location with a WebAuth-style identity, the client
    script under /psdm_socket/, the demo pages under /demo/ (and `/` redirected there),
    and socket.io-client 4.x and 2.x bundles (from node_modules) for pages that bring
    their own. With admin_port, the worker's admin listener on that loopback port is
    proxied at /psdm_admin/metrics and /psdm_admin/healthz (only those two), so the
    demo page can poll them from its own origin."""
    modules = os.path.join(REPO, "node_modules")
    admin = ""
    if admin_port:
        admin = (f"LoadModule proxy_module {APACHE_MODULES}/mod_proxy.so\n"
                 f"LoadModule proxy_http_module {APACHE_MODULES}/mod_proxy_http.so\n"
                 f"ProxyPass {ADMIN_PATH}metrics http://127.0.0.1:{admin_port}/metrics retry=0\n"
                 f"ProxyPass {ADMIN_PATH}healthz http://127.0.0.1:{admin_port}/healthz retry=0\n")
    worker = f"PsdmSocketWorker unix:{sock}\n" if sock else ""  # none: PsdmSocketDaemon's
    return (f"{worker}"
            f"PsdmSocketTimeout 2\n"
            f"Alias /psdm_socket/ {REPO}/js/\n"
            f"Alias /demo/ {REPO}/js/demo/\n"
            f"RedirectMatch 302 ^/$ /demo/\n"
            f"Alias /vendor/socket.io-4/ {modules}/socket.io-client/dist/\n"
            f"Alias /vendor/socket.io-2/ {modules}/socket.io-client-v2/dist/\n"
            f'<LocationMatch "^/[^/]+_socketio/">\n'
            f"  SetHandler psdm-socket\n"
            f"  SetEnv WEBAUTH_USER {user}\n"
            f"  PsdmSocketUser env:WEBAUTH_USER\n"
            f"</LocationMatch>\n"
            f"{admin}")


def start(h, port=None, authz="allow-all", admin=False, **worker_keys):
    """Starts broker, worker and Apache; returns (broker, worker, httpd, sock). With
    admin, the worker's admin listener is on (a free loopback port, worker.admin_port)
    and Apache proxies it under ADMIN_PATH. worker_keys: more worker configuration
    (recovery_max_bytes="0", ...), as for start_worker."""
    broker = h.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(h.sock_dir, "handoff.sock")
    extra = dict(admin_listen="127.0.0.1:0") if admin else {}
    extra.update(worker_keys)
    worker = start_worker(h, broker, sock, authz=authz, **extra)
    worker.admin_port = int(worker.wait_log(ADMIN_RX, what="the admin listener").group(1)) if admin else None
    httpd = h.start_httpd(apache_body(sock, admin_port=worker.admin_port), port=port)
    return broker, worker, httpd, sock


def start_managed(h, port=None, authz="allow-all", admin=False, **worker_keys):
    """Broker and Apache, which starts and supervises the worker itself (PsdmSocketDaemon,
    issue 14): the way the demo runs. Returns (broker, worker, httpd), worker a namespace
    with .proc (Apache's parent, whose child it is), .harness, .conf and .admin_port (a
    free loopback port when admin, else None)."""
    broker = h.start_broker(topics=["elog", "experiments"])
    admin_port = free_port() if admin else None
    # The mock broker holds empty fetches for the whole fetch.wait.max.ms: keep it short.
    keys = dict(kafka__bootstrap__servers=broker.bootstrap, kafka__auto__offset__reset="earliest",
                kafka__fetch__wait__max__ms="10", topics="elog,experiments", authz=authz)
    if admin_port:
        keys["admin_listen"] = f"127.0.0.1:{admin_port}"
    keys.update(worker_keys)
    conf = os.path.join(h.run_dir, "psdm_socketd.conf")
    with open(conf, "w") as f:
        f.write(worker_config(**keys))
    os.chmod(conf, 0o644)  # the worker runs as Apache's User
    daemon = f"PsdmSocketDaemon {os.path.join(BUILD, 'psdm_socketd')} -c {conf}\n"
    httpd = h.start_httpd(daemon + apache_body(None, admin_port=admin_port), port=port)

    def ready():  # the worker's /healthz: 200 once it serves and Kafka assigned it partitions
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    if admin_port:
        h.wait_for(httpd.proc, ready, "Apache's worker ready (/healthz)", 30)
    return broker, types.SimpleNamespace(proc=httpd.proc, harness=h, conf=conf, admin_port=admin_port), httpd


DEMO_ACL = """\
# The demo's rooms: the demo user may read two experiments and the global room,
# not secret_exp (its page stays empty).
xpptut15          demo
mfxc00118         demo
the_global_room   *
"""


def demo_acl(h):
    """Writes the demo's ACL file into the run directory; returns the authz value."""
    path = os.path.join(h.run_dir, "demo.acl")
    with open(path, "w") as f:
        f.write(DEMO_ACL)
    os.chmod(path, 0o644)  # readable by a worker Apache runs as its User
    return f"file:{path}"
