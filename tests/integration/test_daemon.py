"""Apache runs the worker itself (issue 14, PsdmSocketDaemon): a private Apache with only
LoadModule, PsdmSocketDaemon and a location serves clients; the worker it starts is
restarted at once when killed, kept (same PID, websockets open) across graceful and full
restarts, stopped with Apache, and never left behind, also when Apache's parent is
SIGKILLed. Bad directives fail `apache2 -t` or the start with one line naming them."""
import os
import re
import signal
import subprocess
import time

import pytest

from harness import APACHE2, BUILD, HarnessError, worker_config
from rawws import RawEio
from test_faults import PATH, upgrade_status
from test_resume import message
from test_socket_activation import socket_answers
from test_worker import MOCK_FETCH_WAIT, msg

WORKER = os.path.join(BUILD, "psdm_socketd")
LOCATION = ('<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n'
            "  SetEnv WEBAUTH_USER alice\n  PsdmSocketUser env:WEBAUTH_USER\n</LocationMatch>\n")
MPMS = pytest.mark.parametrize("mpm", ["event", "prefork"])


def write(harness, name, text, mode=0o644):
    path = os.path.join(harness.run_dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def worker_conf(harness, broker, **more):
    """The worker's configuration: Kafka and authz only; Apache gives it its socket. (The
    test's topics start empty: reading them from the beginning loses nothing, as base_config.)"""
    return write(harness, "worker.conf", worker_config(kafka__bootstrap__servers=broker.bootstrap,
                                                       kafka__auto__offset__reset="earliest",
                                                       topics="elog,experiments", authz="allow-all",
                                                       **MOCK_FETCH_WAIT, **more))


def start_apache(harness, broker, mpm="event", directives=""):
    conf = worker_conf(harness, broker)
    return harness.start_httpd(f"PsdmSocketDaemon {WORKER} -c {conf}\n{directives}{LOCATION}", mpm=mpm)


def children(pid, comm):
    """PIDs of the processes named `comm` whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name == comm and int(rest[1]) == pid and rest[0] != "Z":
            found.append(int(entry))
    return found


def running(name="psdm_socketd"):
    """PIDs of every live process named `name`, whoever its parent."""
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == name and stat[stat.rindex(")") + 2] != "Z":
            out.append(int(entry))
    return out


def worker_of(harness, httpd, other_than=None, timeout=10):
    """The worker Apache's parent runs (one other than `other_than`), once it serves."""
    found = {}

    def one():
        pids = [p for p in children(httpd.proc.pid, "psdm_socketd") if p != other_than]
        found["pid"] = pids[0] if len(pids) == 1 else None
        return found["pid"] is not None and upgrade_status(httpd.port)[0] == 101
    harness.wait_for(httpd.proc, one, "Apache's worker serving", timeout)
    return found["pid"]


def gone(harness, pids, timeout):
    harness.wait_for(None, lambda: not set(pids) & set(running()), f"workers {pids} gone", timeout)


def httpd_log(harness):
    with open(os.path.join(harness.run_dir, "httpd.log")) as f:
        return f.read()


def client(harness, httpd):
    raw = RawEio(httpd.url, path=PATH)
    raw.connect_ns()
    raw.send('42/psdm_ws,1["join","xpptut15"]')
    assert raw.next_text() == "43/psdm_ws,1[]"
    return raw


@MPMS
def test_loadmodule_and_one_directive_serve_pages(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, mpm)
    pid = worker_of(harness, httpd)
    raw = client(harness, httpd)
    sio = harness.start_client("node4", httpd.url, path=PATH, join=["xpptut15"], count=1)
    sio.wait("ready")
    broker.produce("elog", [msg("xpptut15", 1)])
    assert message(raw)["seq"] == 1
    sio.wait("done")
    raw.close()
    # It runs as Apache's User (www-data when the tests run as root), never as root.
    with open(f"/proc/{pid}/status") as f:
        uid = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    assert uid != 0 or os.geteuid() != 0
    assert re.search(r"PSDM0017: PsdmSocketDaemon: worker 1 started \(pid \d+\)", httpd_log(harness))


@MPMS
def test_a_killed_worker_is_replaced_at_once(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, mpm)
    old = worker_of(harness, httpd)
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = worker_of(harness, httpd, other_than=old)
    took = time.monotonic() - t0
    print(f"\n[daemon] kill -9 to a new worker serving: {took:.3f} s ({mpm})")
    assert took < 1.0 + 0.5, took  # the MPM reaps once a second; the new worker serves at once
    assert re.search(r"PSDM0015: PsdmSocketDaemon: worker 1 ended \(exit status or signal 9\) after [\d.]+ s; "
                     r"starting it again$", httpd_log(harness), re.M)
    raw = client(harness, httpd)
    broker.produce("elog", [msg("xpptut15", 2)])
    assert message(raw)["seq"] == 2
    raw.close()
    assert new != old


@MPMS
@pytest.mark.parametrize("how", [signal.SIGUSR1, signal.SIGHUP], ids=["graceful", "restart"])
def test_restarts_keep_the_worker_and_its_websockets(harness, how, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, mpm)
    pid = worker_of(harness, httpd)
    raw = client(harness, httpd)
    broker.produce("elog", [msg("xpptut15", 1)])
    assert message(raw)["seq"] == 1
    generation = httpd_log(harness).count("resuming normal operations")
    os.kill(httpd.proc.pid, how)
    harness.wait_for(httpd.proc, lambda: httpd_log(harness).count("resuming normal operations") > generation,
                     "Apache restarted", 20)
    assert children(httpd.proc.pid, "psdm_socketd") == [pid]  # the same worker
    broker.produce("elog", [msg("xpptut15", 2)])
    assert message(raw)["seq"] == 2  # the same websocket, still served
    assert upgrade_status(httpd.port)[0] == 101  # and new ones, by the new generation
    raw.close()


def test_a_changed_worker_configuration_replaces_the_worker_on_graceful(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker)
    old = worker_of(harness, httpd)
    worker_conf(harness, broker, ping_interval_ms=20000)  # a key the worker reads at start only
    os.kill(httpd.proc.pid, signal.SIGUSR1)
    new = worker_of(harness, httpd, other_than=old, timeout=20)
    gone(harness, [old], 15)  # drained and gone
    assert "its configuration changed; the new worker took over" in httpd_log(harness)
    assert new in children(httpd.proc.pid, "psdm_socketd")


@MPMS
def test_stop_ends_the_worker(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, mpm)
    pid = worker_of(harness, httpd)
    httpd.proc.stop(timeout=15)  # SIGTERM to Apache: apachectl stop
    gone(harness, [pid], 10)


@MPMS
def test_no_worker_outlives_a_killed_apache(harness, mpm):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, mpm)
    pid = worker_of(harness, httpd)
    os.kill(httpd.proc.pid, signal.SIGKILL)  # the parent only: no stop, no cleanup
    httpd.proc.popen.wait()
    try:
        gone(harness, [pid], 10)
    finally:  # Apache's own children outlive their killed parent: the test ends them
        try:
            os.killpg(httpd.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_worker_that_keeps_dying_is_not_restarted_in_a_tight_loop(harness):
    # Passes --check-config, then ends at once each time it is started.
    dying = write(harness, "dying.sh", "#!/bin/sh\nfor a; do [ \"$a\" = --check-config ] && exit 0; done\nexit 3\n",
                  0o755)
    httpd = harness.start_httpd(f"PsdmSocketDaemon {dying}\n{LOCATION}")
    harness.wait_for(httpd.proc, lambda: "starting it again in 2 s" in httpd_log(harness), "a back-off", 10)
    time.sleep(3)  # what is measured: how many starts these seconds see
    deaths = len(re.findall(r"PSDM0015: PsdmSocketDaemon: worker 1 ended \(exit status or signal 3\)",
                            httpd_log(harness)))
    assert 2 <= deaths <= 3, deaths
    assert upgrade_status(httpd.port)[0] == 503  # no worker alive: 503


@pytest.mark.parametrize("directive,error", [
    ("PsdmSocketDaemon /nonexistent/psdm_socketd", "PsdmSocketDaemon: program /nonexistent/psdm_socketd: "
                                                    "No such file or directory"),
    ("PsdmSocketDaemon {plain}", "PsdmSocketDaemon: program {plain} is not an executable file"),
    ("PsdmSocketDaemon psdm_socketd", "PsdmSocketDaemon: expected an absolute path to the program, got 'psdm_socketd'"),
    (f"PsdmSocketDaemon {WORKER}\nPsdmSocketDaemonUser no-such-user-here",
     "PsdmSocketDaemonUser: no such user 'no-such-user-here'"),
    ("PsdmSocketDaemonWorkers 0", "PsdmSocketDaemonWorkers: expected a number of workers from 1 to 64, got '0'"),
    (f'<VirtualHost *:80>\nPsdmSocketDaemon {WORKER}\n</VirtualHost>', "PsdmSocketDaemon cannot occur within"),
], ids=["missing", "not-executable", "relative", "no-user", "workers", "in-a-vhost"])
def test_a_bad_directive_fails_configtest_naming_it(harness, directive, error):
    plain = write(harness, "plain.txt", "not a program\n", 0o644)
    directive, error = directive.format(plain=plain), error.format(plain=plain)
    conf = os.path.join(harness.run_dir, "bad.conf")
    with open(conf, "w") as f:
        f.write(harness.httpd_config(8, directive + "\n"))
    r = subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and error in r.stderr, r.stderr


def test_a_configuration_the_worker_refuses_fails_the_start(harness):
    conf = write(harness, "worker.conf", "topics = elog\nauthz = nonsense\n")
    with pytest.raises(HarnessError):
        harness.start_httpd(f"PsdmSocketDaemon {WORKER} -c {conf}\n{LOCATION}", timeout=10)
    log = httpd_log(harness)
    assert re.search(r"PSDM0016: PsdmSocketDaemon: \S+ --check-config failed \(exit status \d+\)", log), log[-2000:]
    assert "authz" in log  # the worker's own line says what it refused


def test_several_workers_share_the_upgrades_and_one_killed_costs_none(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    httpd = start_apache(harness, broker, directives="PsdmSocketDaemonWorkers 2\n")
    harness.wait_for(httpd.proc, lambda: len(children(httpd.proc.pid, "psdm_socketd")) == 2, "two workers", 10)
    first, second = sorted(children(httpd.proc.pid, "psdm_socketd"))
    socks = [os.path.join(harness.sock_dir, "psdm_socket", f"worker{i}a.sock") for i in (1, 2)]
    harness.wait_for(httpd.proc, lambda: all(socket_answers(s) for s in socks), "both listening", 10)
    os.kill(first, signal.SIGKILL)
    # Once it is dead and reaped (an upgrade handed to it while it dies is lost with it, as
    # with any handoff: its socket listens until its last thread has exited, after its main
    # thread is a zombie), the other takes the upgrades while it is replaced.
    harness.wait_for(httpd.proc, lambda: not os.path.exists(f"/proc/{first}"), "the killed worker reaped", 5)
    statuses = [upgrade_status(httpd.port)[0] for _ in range(10)]
    assert statuses == [101] * 10, statuses
    harness.wait_for(httpd.proc, lambda: len(children(httpd.proc.pid, "psdm_socketd")) == 2, "replaced", 10)
    assert second in children(httpd.proc.pid, "psdm_socketd")
