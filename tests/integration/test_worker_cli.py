"""psdm_socketd's command line: --version, --help, --check-config, -o, and the refusals an
ops engineer meets first (no authz, typos, a user, file or Kafka property the start would
refuse), each naming the file, line and key; and the process as systemd sees it: its
sd_notify messages (READY=1 only once it listens, RELOADING=1, STOPPING=1) and its signals."""
import os
import re
import signal
import socket
import stat
import subprocess

import pytest

from harness import BUILD, REPO, HarnessError, port_open, worker_config

WORKER = os.path.join(BUILD, "psdm_socketd")


def run(*args, timeout=10):
    return subprocess.run([WORKER, *args], capture_output=True, text=True, timeout=timeout)


def write(harness, text, name="w.conf"):
    path = os.path.join(harness.run_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("psdm_socketd ") and "libwebsockets 4." in r.stdout


def test_check_config_prints_effective_values_with_secrets_masked(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\n"
                          "kafka.sasl.password = hunter2\n")
    r = run("-c", path, "--check-config", "-o", "max_payload=2M")
    assert r.returncode == 0, r.stderr
    assert "max_payload = 2097152" in r.stdout
    assert "kafka.sasl.password = ***" in r.stdout and "hunter2" not in r.stdout
    assert "configuration OK" in r.stderr


def test_example_config_refuses_to_start_until_authz_is_chosen():
    r = run("-c", os.path.join(REPO, "conf/psdm_socketd.conf"), "--check-config")
    assert r.returncode == 1
    assert "conf/psdm_socketd.conf: authz: not set" in r.stderr and "allow-all" in r.stderr
    # Its handoff_socket's directory is systemd's RuntimeDirectory=, absent here: refused (a start
    # could not bind there either), then moved.
    if not os.path.isdir("/run/psdm_socket"):
        r = run("-c", os.path.join(REPO, "conf/psdm_socketd.conf"), "--check-config", "-o", "authz=allow-all")
        assert r.returncode == 1
        assert re.search(r"conf/psdm_socketd\.conf:\d+: handoff_socket: directory /run/psdm_socket: No such file",
                         r.stderr), r.stderr
    r = run("-c", os.path.join(REPO, "conf/psdm_socketd.conf"), "--check-config", "-o", "authz=allow-all",
            "-o", "handoff_socket=/tmp/psdm_example.sock")
    assert r.returncode == 0, r.stderr


def test_unknown_key_and_bad_value_name_file_line_and_key(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\nmax_payloda = 1M\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert f"{path}:4: max_payloda: unknown key" in r.stderr
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\nclient_backlog = lots\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert f"{path}:4: client_backlog: expected a size" in r.stderr


def test_missing_acl_file_is_refused_at_start(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = file:/etc/psdm_socket/no-such-acl\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert f"error [PSDM-CONFIG] {path}:3: authz: file provider: cannot read ACL file " \
           "'/etc/psdm_socket/no-such-acl': No such file or directory" in r.stderr


def test_check_config_output_reads_back_unchanged(harness):
    # Values the plain syntax cannot carry come back quoted: a '#' after a blank or at the
    # start (a comment otherwise), a leading '"', blanks at either end.
    acl = os.path.join(harness.run_dir, "a #b.acl")  # the ACL must exist: --check-config reads it
    with open(acl, "w") as f:
        f.write("* *\n")
    path = write(harness, f"listen = 127.0.0.1:0\ntopics = elog, runs.v2\nauthz = \"file:{acl}\"\n"
                          'room_field = " exp #1 "   # quoted: blanks and # kept\n'
                          'event = "say \\"hi\\" \\\\o/"\n'
                          "kafka.client.id = a\\b=c\n")
    r = run("-c", path, "--check-config", "-o", "kafka.group.id=#g", "-o", 'authz_user_header=#x')
    assert r.returncode == 0, r.stderr
    for line in [f'authz = "file:{acl}"', 'room_field = " exp #1 "', 'event = say "hi" \\o/',
                 "kafka.client.id = a\\b=c", 'kafka.group.id = "#g"', 'authz_user_header = "#x"',
                 "topics = elog, runs.v2"]:
        assert line + "\n" in r.stdout, (line, r.stdout)
    again = run("-c", write(harness, r.stdout, name="dump.conf"), "--check-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout == r.stdout


def test_topic_names_follow_kafkas_rule(harness):
    for topics, bad in [("elog, bad topic", "bad topic"), ("elog,..", ".."), ("a/b", "a/b"), ("x" * 250, "x" * 100 + "...")]:
        path = write(harness, f"listen = 127.0.0.1:0\nauthz = allow-all\ntopics = {topics}\n")
        r = run("-c", path, "--check-config")
        assert r.returncode == 1
        assert f"psdm_socketd: {path}:3: topics: '{bad}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not '.' or " \
               "'..')" in r.stderr, r.stderr
    path = write(harness, "listen = 127.0.0.1:0\nauthz = allow-all\ntopics = elog\nglobal_room_topics = exp eriments\n")
    r = run("-c", path, "--check-config")
    assert r.returncode == 1 and f"{path}:4: global_room_topics: 'exp eriments' is not a Kafka topic" in r.stderr
    path = write(harness, "listen = 127.0.0.1:0\nauthz = allow-all\ntopics = elog\n")
    r = run("-c", path, "--check-config", "-o", "kafka.a b=1")
    assert r.returncode == 1 and "psdm_socketd: -o: kafka.a b: not a librdkafka property name" in r.stderr


def test_help_points_at_the_manual_pages():
    r = run("--help")
    assert r.returncode == 0
    assert "psdm_socketd(8)" in r.stdout and "psdm_socketd.conf(5)" in r.stdout
    assert "/usr/share/doc/psdm-socket/" in r.stdout
    assert "conf/" not in r.stdout  # no path of the source tree


# ------------------------------------------------------------------ --check-config = the start's checks
#
# Each refusal below is made by --check-config and by a start alike (one code path), as one
# line "psdm_socketd: FILE:LINE: key: reason" (a start logs the same "FILE:LINE: key: reason").

GOOD = "listen = 127.0.0.1:0\ntopics = elog\n"


def refused(path, line, key, reason, *extra):
    """Runs --check-config and then a start on `path`; both must fail naming PATH:LINE (or
    "-o" when line is None) and KEY."""
    where = "-o" if line is None else f"{path}:{line}"
    r = run("-c", path, "--check-config", *extra)
    assert r.returncode != 0
    assert f"psdm_socketd: {where}: {key}: {reason}" in r.stderr, r.stderr
    assert "configuration OK" not in r.stderr and r.stdout == ""
    r = run("-c", path, *extra)
    assert r.returncode != 0
    assert f"error [PSDM-CONFIG] {where}: {key}: {reason}" in r.stderr, r.stderr
    assert " ready" not in r.stderr


def test_check_config_refuses_a_misspelled_kafka_property(harness):
    path = write(harness, GOOD + "authz = allow-all\nkafka.bootstrap.server = 127.0.0.1:9092\n")
    refused(path, 4, "kafka.bootstrap.server", 'No such configuration property: "bootstrap.server"')
    # and a value librdkafka refuses, given with -o
    path = write(harness, GOOD + "authz = allow-all\n")
    refused(path, None, "kafka.session.timeout.ms", 'Invalid value for configuration property "session.timeout.ms"',
            "-o", "kafka.session.timeout.ms=soon")


def test_check_config_refuses_an_unknown_peer_user(harness):
    path = write(harness, GOOD + f"authz = allow-all\nhandoff_socket = {harness.sock_dir}/h.sock\n"
                                 "handoff_allowed_peers = www-data, psdm-no-such-user\n")
    refused(path, 5, "handoff_allowed_peers", "no such user 'psdm-no-such-user'")


def test_check_config_refuses_a_missing_or_broken_acl_file(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    path = write(harness, GOOD + f"authz = file:{acl}\n")
    refused(path, 3, "authz", f"file provider: cannot read ACL file '{acl}': No such file or directory")
    with open(acl, "w") as f:
        f.write("# rooms\nxpp* alice\nxcs* @\n")
    refused(path, 3, "authz", f"file provider: {acl}:3: ")


def test_check_config_refuses_an_unreadable_certificate(harness):
    missing = os.path.join(harness.run_dir, "no-such-ca.pem")
    path = write(harness, GOOD + f"authz = allow-all\nkafka.security.protocol = ssl\nkafka.ssl.ca.location = {missing}\n")
    refused(path, 5, "kafka.ssl.ca.location", f"cannot read '{missing}': No such file or directory")
    path = write(harness, GOOD + f"authz = allow-all\nkafka.ssl.key.location = {harness.run_dir}\n")
    refused(path, 4, "kafka.ssl.key.location", f"'{harness.run_dir}' is not a regular file")


def test_check_config_reads_files_as_the_user_it_runs_as(harness):
    """ExecStartPre runs as the worker's user: a key file only root may read is refused."""
    key = os.path.join(harness.run_dir, "client.key")
    with open(key, "w") as f:
        f.write("not really a key\n")
    os.chmod(key, 0o600)
    path = write(harness, GOOD + f"authz = allow-all\nkafka.ssl.key.location = {key}\n")
    os.chmod(path, 0o644)
    as_nobody = {"user": 65534} if os.geteuid() == 0 else {}
    if not as_nobody:
        os.chmod(key, 0)
    r = subprocess.run([WORKER, "-c", path, "--check-config"], capture_output=True, text=True, timeout=10,
                       **as_nobody)
    assert r.returncode != 0
    assert f"psdm_socketd: {path}:4: kafka.ssl.key.location: cannot read '{key}': Permission denied" in r.stderr


def test_check_config_reports_every_problem_and_passes_a_good_config(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    with open(acl, "w") as f:
        f.write("xpp* alice @ps-data\nthe_global_room *\n")
    ca = os.path.join(harness.run_dir, "ca.pem")
    with open(ca, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    text = (f"listen = 127.0.0.1:0\ntopics = elog\nauthz = file:{acl}\nhandoff_socket = {harness.sock_dir}/h.sock\n"
            f"handoff_allowed_peers = root, 33\nkafka.bootstrap.servers = 127.0.0.1:9092\n"
            f"kafka.ssl.ca.location = {ca}\nkafka.session.timeout.ms = 30000\n")
    r = run("-c", write(harness, text), "--check-config")
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stderr and f"kafka.ssl.ca.location = {ca}\n" in r.stdout
    # Three mistakes at once: one line each.
    path = write(harness, text.replace("root, 33", "root, nobodyy").replace("bootstrap.servers", "bootstrap.srvers")
                 .replace(acl, acl + ".old"), name="bad.conf")
    r = run("-c", path, "--check-config")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.startswith("psdm_socketd: ")]
    assert sorted(lines) == sorted([
        f"psdm_socketd: {path}:5: handoff_allowed_peers: no such user 'nobodyy'",
        f"psdm_socketd: {path}:6: kafka.bootstrap.srvers: No such configuration property: \"bootstrap.srvers\"",
        f"psdm_socketd: {path}:3: authz: file provider: cannot read ACL file '{acl}.old': No such file or directory",
    ]), r.stderr


# ------------------------------------------------------------------ systemd: sd_notify, signals

class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, harness):
        self.path = os.path.join(harness.sock_dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=20):
        """The next message, as a dict of its KEY=VALUE lines."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise HarnessError(f"no sd_notify message within {timeout} s") from None
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.sock.close()


def spawn_worker(harness, text, env=None):
    conf = write(harness, text, name="worker.conf")
    return harness.spawn("worker", [WORKER, "-c", conf], env=env, clean_exit=True)


@pytest.fixture
def notify_socket(harness):
    n = NotifySocket(harness)
    yield n
    n.close()


def test_sd_notify_ready_only_once_listening_then_reloading_and_stopping(harness, notify_socket):
    handoff = os.path.join(harness.sock_dir, "h.sock")
    acl = os.path.join(harness.run_dir, "rooms.acl")
    with open(acl, "w") as f:
        f.write("xpp* alice\n")
    text = worker_config(listen="127.0.0.1:0", handoff_socket=handoff, handoff_allowed_peers="root",
                         topics="elog", authz=f"file:{acl}", kafka__bootstrap__servers="127.0.0.1:1")
    # No broker answers: READY=1 waits for Kafka partitions (test_socket_activation.py) only
    # PSDM_KAFKA_READY_TIMEOUT_MS.
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.path, PSDM_KAFKA_READY_TIMEOUT_MS="200")
    proc = spawn_worker(harness, text, env=env)

    msg = notify_socket.next()
    # The first message is a STATUS, sent once both listeners listen: the handoff socket
    # accepts a connection and the direct port (named in STATUS) answers, right now.
    assert "READY" not in msg, msg
    assert stat.S_ISSOCK(os.stat(handoff).st_mode)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(handoff)
    m = re.fullmatch(r"starting: waiting for Kafka partitions; serving handoff (\S+), listen 127\.0\.0\.1:(\d+)",
                     msg.get("STATUS", ""))
    assert m and m.group(1) == handoff, msg
    assert port_open(int(m.group(2)))
    msg = notify_socket.next()
    assert msg.get("READY") == "1" and msg["STATUS"].startswith("serving handoff " + handoff), msg

    os.kill(proc.pid, signal.SIGHUP)
    msg = notify_socket.next()
    assert msg.get("RELOADING") == "1" and int(msg["MONOTONIC_USEC"]) > 0, msg
    msg = notify_socket.next()
    assert msg.get("READY") == "1" and msg["STATUS"].startswith("serving"), msg

    os.kill(proc.pid, signal.SIGTERM)
    msg = notify_socket.next()
    assert msg.get("STOPPING") == "1" and msg["STATUS"].startswith("stopping"), msg
    assert proc.popen.wait(10) == 0


def test_without_notify_socket_the_worker_runs_as_before(harness):
    text = worker_config(listen="127.0.0.1:0", topics="elog", authz="allow-all",
                         kafka__bootstrap__servers="127.0.0.1:1")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = spawn_worker(harness, text, env=env)
    harness.wait_for(proc, lambda: " ready" in open(proc.log).read(), "logging ready", 20)
    assert proc.stop() == 0


def signal_mask(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_sigusr1_and_sigusr2_leave_the_worker_running_and_serving(harness):
    broker = harness.start_broker(topics=["elog"])
    worker = harness.start_worker(worker_config(kafka__bootstrap__servers=broker.bootstrap,
                                                kafka__auto__offset__reset="earliest", topics="elog",
                                                authz="allow-all"))
    ignored = signal_mask(worker.proc.pid, "SigIgn")
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
        assert ignored & (1 << (sig - 1)), f"{sig.name} not ignored"
    for _ in range(3):
        os.kill(worker.proc.pid, signal.SIGUSR1)
        os.kill(worker.proc.pid, signal.SIGUSR2)
    # Still serving: a client joins and gets a record published after the signals.
    client = harness.start_client("python", worker.url, join=["xpptut15"], count=1)
    client.wait("ready")
    broker.produce("elog", ['{"experiment_name": "xpptut15", "seq": 1}'])
    client.wait("done")
    assert [m["seq"] for m in client.messages()] == [1]
    assert worker.proc.alive()
    assert worker.proc.stop() == 0


@pytest.mark.parametrize("stream", ["stderr", "other"])
def test_log_lines_carry_journal_priorities_only_when_stderr_is_the_journal(harness, stream):
    """systemd sets JOURNAL_STREAM=DEV:INODE of the stream it gives as stderr; a worker whose
    stderr is that stream writes "<N>" priorities and no time, any other keeps the plain form
    (an inherited JOURNAL_STREAM with stderr redirected elsewhere must not count)."""
    log = os.path.join(harness.run_dir, "worker.log")  # what spawn() gives the worker as stderr
    open(log, "w").close()
    st = os.stat(log)
    ino = st.st_ino if stream == "stderr" else st.st_ino + 1
    text = worker_config(listen="127.0.0.1:0", topics="elog", authz="allow-all",
                         kafka__bootstrap__servers="127.0.0.1:1")
    proc = spawn_worker(harness, text, env=dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{ino}"))
    harness.wait_for(proc, lambda: " ready\n" in open(log).read(), "logging ready", 20)
    assert proc.stop() == 0
    lines = open(log).read().splitlines()
    if stream == "stderr":
        assert "<5>notice [PSDM-MAIN] psdm_socketd " in "\n".join(lines)
        assert "<4>warn [PSDM-AUTHZ] authz = allow-all: every user may join every room" in lines
        assert all(re.match(r"<[3-7]>(error|warn|notice|info|debug) \[PSDM-[A-Z]+\] ", line) for line in lines), lines
    else:
        assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|notice|info|debug) \[", line)
                   for line in lines), lines
