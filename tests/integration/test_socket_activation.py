"""systemd socket activation of the handoff socket (conf/psdm_socketd.socket) and readiness.

The test stands in for systemd: it creates, binds and holds the listening Unix socket, and
starts the worker with it at fd 3 and LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES set as
systemd sets them (a tiny launcher sets LISTEN_PID to its own pid, then execs the worker).
Because the test keeps its copy open, the socket outlives a worker exactly as it outlives
`systemctl restart psdm_socketd`: upgrades Apache hands over while no worker runs wait in
its backlog, and the next worker takes them.

- the worker serves handoffs on the socket it was given, logs it "(from systemd)" and
  leaves the socket file alone when it stops;
- restart under load: clients closed by the stopping worker and new upgrades sent while no
  worker runs get no 503; they become websockets of the next worker and receive records;
- a descriptor that is not the configured handoff socket (a TCP socket, a Unix socket at
  another path) stops the start with one error naming what was passed and what was expected;
- READY=1 (sd_notify) comes only once Kafka partitions are assigned, and, with a broker
  that never answers, after PSDM_KAFKA_READY_TIMEOUT_MS with a STATUS saying so."""
import os
import re
import signal
import socket
import stat
import subprocess

import pytest

import stack
from harness import BUILD, Process, Worker, worker_config
from test_worker_cli import NotifySocket

WORKER = os.path.join(BUILD, "psdm_socketd")

# systemd's side of sd_listen_fds(3): the socket at fd 3, LISTEN_PID the pid that execs the
# worker (the launcher's own, kept by exec). argv: FD FDNAME WORKER ARGS...
LAUNCHER = r"""
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES=sys.argv[2])
os.execv(sys.argv[3], sys.argv[3:])
"""


def unix_listener(path, backlog=4096):
    """A listening Unix stream socket at path, Apache's user may connect (as SocketMode=)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(backlog)
    return s


@pytest.fixture
def held(harness):
    """The handoff socket as systemd's socket unit holds it; closed after the test."""
    path = os.path.join(harness.sock_dir, "handoff.sock")
    s = unix_listener(path)
    yield path, s
    s.close()


def config(harness, sock, name, bootstrap, **extra):
    """The worker's configuration (as stack.start_worker's), written to RUN_DIR/NAME.conf."""
    keys = dict(kafka__bootstrap__servers=bootstrap, kafka__auto__offset__reset="earliest",
                kafka__fetch__wait__max__ms="10", topics="elog,experiments", authz="allow-all",
                handoff_socket=sock, handoff_socket_mode="0666", handoff_allowed_peers=stack.peer(),
                listen="127.0.0.1:0", log_level="debug")
    keys.update(extra)
    path = os.path.join(harness.run_dir, f"{name}.conf")
    with open(path, "w") as f:
        f.write(worker_config(**keys))
    return path


def spawn_activated(harness, conf, passed, name="worker", fdname="handoff", env=None, clean_exit=True):
    """psdm_socketd started as systemd starts a socket-activated service: `passed` (a
    socket) at fd 3 with LISTEN_*. Registered with the harness, which stops it at the end."""
    log = os.path.join(harness.run_dir, f"{name}.log")
    env = {k: v for k, v in (env or os.environ).items() if not k.startswith("LISTEN_")}
    fd = passed.fileno()
    with open(log, "ab") as logf:
        popen = subprocess.Popen(["/usr/bin/python3", "-c", LAUNCHER, str(fd), fdname, WORKER, "-c", conf],
                                 stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env, pass_fds=[fd],
                                 start_new_session=True, cwd=harness.run_dir)
    proc = Process(name, popen, log, clean_exit)
    harness.procs.append(proc)
    return Worker(harness, proc, conf, None)


def wait_activated(worker, sock):
    worker.wait_log(rf"handoff socket {re.escape(sock)} \(from systemd\), mode 0666", 20, "taking systemd's socket")
    worker.wait_log(r"ready: [1-9]\d* partition\(s\) assigned", 20, "Kafka partitions assigned")


def access_statuses(run_dir):
    """The statuses Apache logged for the upgrades at the handoff location (harness
    LogFormat: host user "request" status ...)."""
    with open(os.path.join(run_dir, "access.log")) as f:
        return [int(m.group(1)) for m in re.finditer(r'"GET /[^/ ]+_socketio/\S* HTTP/1.1" (\d{3}) ', f.read())]


def socket_answers(path):
    """True if something listens on the Unix socket at path (a connect succeeds)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


# ------------------------------------------------------------------ serving on systemd's socket

def test_worker_serves_handoffs_on_the_socket_systemd_passed_and_leaves_it(harness, held):
    sock, listener = held
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = spawn_activated(harness, config(harness, sock, "worker", broker.bootstrap), listener)
    wait_activated(worker, sock)
    httpd = harness.start_httpd(stack.apache_body(sock))

    client = harness.start_client("python", httpd.url, join=["xpptut15"], count=1)
    client.wait("ready")
    broker.produce("elog", ['{"experiment_name": "xpptut15", "seq": 1}'])
    client.wait("done")
    assert [m["seq"] for m in client.messages()] == [1]
    assert re.search(r"client \d+ connected \(user 'demo'.*via handoff", worker.log_text())

    assert worker.proc.stop() == 0
    log = worker.log_text()
    assert "(created)" not in log
    assert "handoffs: 1 adopted, 0 refused, 0 withdrawn" in log
    # systemd's socket: still there, and still listening (the test's copy, as systemd's).
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert socket_answers(sock)


def test_worker_without_socket_activation_creates_and_removes_its_own(harness):
    sock = os.path.join(harness.sock_dir, "own.sock")
    broker = harness.start_broker(topics=["elog"])
    worker = stack.start_worker(harness, broker, sock)
    worker.wait_log(rf"handoff socket {re.escape(sock)} \(created\), mode 0666")
    assert worker.proc.stop() == 0
    assert not os.path.lexists(sock)


# ------------------------------------------------------------------ restart under load

def test_restart_under_load_queues_upgrades_in_the_backlog_instead_of_503(harness, held):
    sock, listener = held
    broker = harness.start_broker(topics=["elog", "experiments"])
    first = spawn_activated(harness, config(harness, sock, "worker1", broker.bootstrap), listener, name="worker1")
    wait_activated(first, sock)
    httpd = harness.start_httpd(stack.apache_body(sock))

    # Pages connected to the first worker (socket.io-client 4.x, reconnecting as pages do).
    pages = [harness.start_client("node4", httpd.url, join=["xpptut15"], name=f"page{i}")
             for i in range(3)]
    for p in pages:
        p.wait("ready")
    broker.produce("elog", ['{"experiment_name": "xpptut15", "seq": 1}'])
    for p in pages:
        p.wait("msg")
    upgrades_before = len(access_statuses(harness.run_dir))

    # systemctl restart, first half: SIGTERM; the drain closes the pages with 1001 and they
    # reconnect, through Apache, into the socket's backlog (the stopping worker leaves new
    # handoffs there); the worker exits.
    os.kill(first.proc.pid, signal.SIGTERM)
    assert first.proc.popen.wait(15) == 0
    first.wait_log(r"new handoffs wait in the backlog of .* for the next worker")
    harness.wait_for(None, lambda: len(access_statuses(harness.run_dir)) >= upgrades_before + len(pages),
                     "the pages' reconnections handed over", 20)
    # New pages while no worker runs: handed over too (Apache logs 101), and waiting.
    late = [harness.start_client("python", httpd.url, join=["xpptut15"], count=2, name=f"late{i}")
            for i in range(3)]
    want = upgrades_before + len(pages) + len(late)
    harness.wait_for(None, lambda: len(access_statuses(harness.run_dir)) >= want,
                     "the new pages' upgrades handed over", 20)
    assert not any(p.proc.popen.poll() is not None for p in late), "a page gave up while no worker ran"

    # Second half: the new worker on the same socket takes everything that waited.
    second = spawn_activated(harness, config(harness, sock, "worker2", broker.bootstrap), listener, name="worker2")
    for c in pages + late:
        c.wait("ready", timeout=30)
    wait_activated(second, sock)
    broker.produce("elog", ['{"experiment_name": "xpptut15", "seq": 2}'])
    for c in pages + late:  # the new worker's group starts at the earliest offset: 1 again, then 2
        while not c.messages() or c.messages()[-1]["seq"] != 2:
            c.wait("msg")

    statuses = access_statuses(harness.run_dir)
    assert 503 not in statuses and statuses.count(101) == len(statuses), statuses
    assert "refused handoff" not in first.log_text()
    assert "refused handoff" not in second.log_text()
    assert len(re.findall(r"connected \(user 'demo'.*via handoff", second.log_text())) == len(pages) + len(late)
    assert not any(e["ev"] == "connect_error" for c in pages + late for e in c.events)


# ------------------------------------------------------------------ the wrong socket

@pytest.mark.parametrize("kind", ["tcp", "unix-elsewhere"])
def test_a_socket_that_is_not_the_handoff_socket_stops_the_start(harness, kind):
    sock = os.path.join(harness.sock_dir, "handoff.sock")
    if kind == "tcp":
        passed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        passed.bind(("127.0.0.1", 0))
        passed.listen(16)
        what = rf"a TCP socket listening on 127\.0\.0\.1:{passed.getsockname()[1]}"
    else:
        other = os.path.join(harness.sock_dir, "other.sock")
        passed = unix_listener(other)
        what = rf"a Unix stream socket listening on {re.escape(other)}"
    try:
        worker = spawn_activated(harness, config(harness, sock, "worker", "127.0.0.1:1"), passed,
                                 clean_exit=False)
        assert worker.proc.popen.wait(15) == 1
    finally:
        passed.close()
    log = worker.log_text()
    assert re.search(rf"error \[PSDM-CONFIG\] .*worker\.conf: systemd passed {what} \(named handoff\); expected one "
                     rf"listening Unix stream socket on {re.escape(sock)} \(handoff_socket\)", log), log
    assert " ready" not in log
    assert not os.path.lexists(sock)  # nothing created in its place


# ------------------------------------------------------------------ readiness

@pytest.fixture
def notify_socket(harness):
    n = NotifySocket(harness)
    yield n
    n.sock.close()


def test_ready_only_once_kafka_partitions_are_assigned(harness, held, notify_socket):
    sock, listener = held
    broker = harness.start_broker(topics=["elog", "experiments"])
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.path)
    worker = spawn_activated(harness, config(harness, sock, "worker", broker.bootstrap), listener, env=env)

    # First a STATUS without READY: the worker serves (the handoff socket is watched), Kafka
    # is not assigned yet (the mock cluster takes about 3 s).
    msg = notify_socket.next()
    assert "READY" not in msg and msg["STATUS"].startswith("starting: waiting for Kafka partitions; serving "), msg
    msg = notify_socket.next()
    assert msg.get("READY") == "1" and msg["STATUS"].startswith("serving handoff " + sock), msg
    log = worker.log_text()
    assigned = re.search(r"ready: [1-9]\d* partition\(s\) assigned", log)
    assert assigned, "READY=1 before the partitions were assigned:\n" + log
    worker.wait_log(r"told systemd READY=1: [1-9]\d* Kafka partition\(s\) assigned")

    # A reload once ready: RELOADING=1 then READY=1, as before.
    os.kill(worker.proc.pid, signal.SIGHUP)
    assert notify_socket.next().get("RELOADING") == "1"
    assert notify_socket.next().get("READY") == "1"
    os.kill(worker.proc.pid, signal.SIGTERM)
    assert notify_socket.next().get("STOPPING") == "1"
    assert worker.proc.popen.wait(10) == 0


def test_ready_after_the_timeout_when_the_broker_never_answers(harness, held, notify_socket):
    sock, listener = held
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.path, PSDM_KAFKA_READY_TIMEOUT_MS="300")
    worker = spawn_activated(harness, config(harness, sock, "worker", "127.0.0.1:1"), listener, env=env)
    assert "READY" not in notify_socket.next()
    msg = notify_socket.next()
    assert msg.get("READY") == "1" and msg["STATUS"].endswith("; Kafka: no partitions assigned yet"), msg
    worker.wait_log(r"warn \[PSDM-MAIN\] no Kafka partition assigned within 300 ms: told systemd READY=1 anyway")
    assert socket_answers(sock)
    assert worker.proc.stop() == 0
