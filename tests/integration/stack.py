"""The whole stack on loopback, as `make demo` runs it and the browser tests use it:
the Kafka-protocol broker, psdm_socketd behind its handoff socket, and Apache with
mod_psdm_socket serving the browser client (js/) and the demo pages (js/demo/)."""
import os

from harness import REPO, worker_config

DEMO_USER = "demo"


def peer():
    """The user Apache's children run as: www-data when we run as root."""
    return "www-data" if os.geteuid() == 0 else str(os.geteuid())


def start_worker(h, broker, sock, authz="allow-all", name="worker", peers=None, **extra):
    """psdm_socketd with its handoff socket at `sock` (peers: who may hand over,
    default Apache's user) and a direct listener; extra keys override the defaults."""
    keys = dict(kafka__bootstrap__servers=broker.bootstrap, kafka__auto__offset__reset="earliest",
                kafka__fetch__wait__max__ms="10", topics="elog,experiments", authz=authz,
                handoff_socket=sock, handoff_socket_mode="0666", handoff_allowed_peers=peers or peer(),
                listen="127.0.0.1:0", log_level="debug")
    keys.update(extra)
    return h.start_worker(worker_config(**keys), name=name)


def apache_body(sock, user=DEMO_USER):
    """Apache config: the handoff location with a WebAuth-style identity, the client
    script under /psdm_socket/, the demo pages under /demo/, and socket.io-client 4.x
    and 2.x bundles (from node_modules) for pages that bring their own."""
    modules = os.path.join(REPO, "node_modules")
    return (f"PsdmSocketWorker unix:{sock}\n"
            f"PsdmSocketTimeout 2\n"
            f"Alias /psdm_socket/ {REPO}/js/\n"
            f"Alias /demo/ {REPO}/js/demo/\n"
            f"Alias /vendor/socket.io-4/ {modules}/socket.io-client/dist/\n"
            f"Alias /vendor/socket.io-2/ {modules}/socket.io-client-v2/dist/\n"
            f'<LocationMatch "^/[^/]+_socketio/">\n'
            f"  SetHandler psdm-socket\n"
            f"  SetEnv WEBAUTH_USER {user}\n"
            f"  PsdmSocketUser env:WEBAUTH_USER\n"
            f"</LocationMatch>\n")


def start(h, port=None, authz="allow-all"):
    """Starts broker, worker and Apache; returns (broker, worker, httpd, sock)."""
    broker = h.start_broker(topics=["elog", "experiments"])
    sock = os.path.join(h.sock_dir, "handoff.sock")
    worker = start_worker(h, broker, sock, authz=authz)
    httpd = h.start_httpd(apache_body(sock), port=port)
    return broker, worker, httpd, sock


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
    return f"file:{path}"
