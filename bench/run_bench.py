#!/usr/bin/python3
"""`make bench`: psdm_socketd against the reference service (bench/reference/app.py,
Flask-SocketIO under gunicorn + eventlet, as flask_socket_util is deployed), same
scenarios, same load generator (build/psdm_loadgen), side by side.

    /usr/bin/python3 bench/run_bench.py --build-dir build [--runs 3] [--scenarios idle,fanout,rooms,probe]

Every scenario run gets a fresh broker (build/psdm_kafka_dev) and a fresh server. Runs
are interleaved (run 1 of each scenario on the worker then on the reference, then run
2, ...) so that both see the same machine. The table shows the median of the runs;
the raw figures of every run go to build/bench/results-latest.json and .csv (and a
time-stamped copy). Logs of every process: build/bench/logs/. Processes are started and
stopped by the integration tests' harness (tests/integration/harness.py): each in its
own process group, stopped at the end of its run, also on failure or Ctrl-C.
See bench/README.md for what each figure means.
"""
import argparse
import contextlib
import csv
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402 - after its directory is on the path

PYTHON = "/usr/bin/python3"  # Debian's python3-* packages are visible to this one only
GUNICORN = "/usr/bin/gunicorn"
SOCKETIO_PATH = "bench_socketio/socket.io"  # the reference's path; the worker takes any */socket.io/

TARGETS = ("psdm_socketd", "reference")
SCENARIOS = ("idle", "fanout", "rooms", "probe", "handshake", "apache-hold")


class BenchError(harness.HarnessError):
    """A run could not be completed. (harness.HarnessError, its base: a component did not
    start or become ready; both end the run with the message as its error.)"""


# ---------------------------------------------------------------------------- processes
# harness.Harness starts them (its own process group each, logs in its run directory) and
# probes readiness (wait_for); here a run's logs are always kept, and stopping also
# kills what is left in the process group (gunicorn's worker, a loadgen's client
# processes).

OPEN = []  # harnesses whose processes are not stopped yet: main stops them on the way out


@contextlib.contextmanager
def run_harness(out_root, name):
    """A harness.Harness for one run: logs in OUT/logs/NAME/ (emptied first, kept after);
    everything it started is stopped when the block ends, however it ends."""
    h = harness.Harness(name, log_root=os.path.join(out_root, "logs"))
    OPEN.append(h)
    try:
        yield h
    finally:
        stop_harness(h)


def stop_harness(h):
    for p in reversed(h.procs):
        stop(p)
    shutil.rmtree(h.sock_dir, ignore_errors=True)
    if h in OPEN:
        OPEN.remove(h)


def stop_all():
    for h in reversed(list(OPEN)):
        stop_harness(h)


def stop(proc, timeout=5.0):
    """harness.Process.stop (SIGTERM to the group, SIGKILL after timeout), then SIGKILL
    to anything left in the group. Returns the exit status."""
    status = proc.stop(timeout)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return status


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def choices(ap, text, allowed, what):
    """The comma-separated list of option `what` (empty entries dropped); ap.error on a name
    not in `allowed`."""
    names = [n for n in text.split(",") if n]
    for n in names:
        if n not in allowed:
            ap.error(f"unknown {what} {n} ({', '.join(allowed)})")
    return names


def start_run(a):
    """A bench script's start once its options are checked: the harness builds from
    a.build_dir, the output directory (a.out, default BUILD/bench) exists, and SIGINT (also
    when started with it ignored, as a background job), SIGTERM and SIGHUP stop the runs.
    Returns (output directory, time stamp for the result files)."""
    harness.BUILD = a.build_dir  # the harness starts psdm_kafka_dev from there
    out_root = os.path.abspath(a.out or os.path.join(a.build_dir, "bench"))
    os.makedirs(out_root, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    return out_root, time.strftime("%Y%m%d-%H%M%S")


def tail(path):
    return harness.tail(path, lines=15)


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (field 3, the state, first),
    or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            fields = proc_stat(d)
            if fields and int(fields[1]) == pid:
                kids.append(int(d))
    return kids


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def machine_busy_seconds():
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    v = [int(x) for x in cpu]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- components

def start_broker(h):
    """build/psdm_kafka_dev with topic elog (1 partition), as the harness starts it (its
    log: kafka.log). Returns the process and the bootstrap address."""
    broker = h.start_broker(topics=["elog"], partitions=1, timeout=15)
    return broker.proc, broker.bootstrap


def start_worker(h, build, bootstrap):
    port = harness.free_port()
    conf = os.path.join(h.run_dir, "psdm_socketd.conf")
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\n"
                f"kafka.bootstrap.servers = {bootstrap}\n"
                "kafka.auto.offset.reset = earliest\n"
                "kafka.fetch.wait.max.ms = 5\n"
                "topics = elog\n"
                "authz = allow-all\n"
                "log_level = warn\n")
    p = h.spawn("server", [os.path.join(build, "psdm_socketd"), "-c", conf])
    h.wait_for(p, lambda: harness.port_open(port), f"listening on 127.0.0.1:{port}", 20)
    return p, port, [p.pid]


def start_reference(h, bootstrap):
    port = harness.free_port()
    env = dict(os.environ, PSDM_REF_BOOTSTRAP=bootstrap, PSDM_REF_TOPICS="elog",
               PSDM_REF_PATH=SOCKETIO_PATH, PSDM_REF_FETCH_WAIT_MS="5", PSDM_REF_OFFSET_RESET="earliest")
    # As deployed: gunicorn -k eventlet -w 1 app:app. --worker-connections: gunicorn's default
    # (1000 per worker) would cap the scenarios long before the service does; --timeout: the
    # arbiter must not kill a worker that is busy for a while (it would restart it mid-run);
    # --graceful-timeout: a benchmark need not wait 30 s for connections to drain at the end.
    argv = [PYTHON, GUNICORN, "-k", "eventlet", "-w", "1", "--worker-connections", "25000",
            "--timeout", "600", "--graceful-timeout", "2", "--backlog", "2048",
            "-b", f"127.0.0.1:{port}", "--chdir", os.path.join(REPO, "bench", "reference"), "app:app"]
    p = h.spawn("server", argv, env=env)
    h.wait_for(p, lambda: harness.port_open(port) and bool(children_of(p.pid)), f"listening on 127.0.0.1:{port}",
               30)
    return p, port, children_of(p.pid)


# ---------------------------------------------------------------------------- scenarios

def scenario_args(name, a):
    """Loadgen arguments and a human title for each scenario."""
    if name == "idle":
        n = a.idle_connections
        return (f"idle {n} connections",
                ["--connections", n, "--rooms", max(1, n // 10), "--settle", a.settle, "--hold", a.hold,
                 "--drain", 1, "--ramp-timeout", a.ramp_timeout])
    if name == "fanout":
        n = a.fanout_clients
        return (f"one room x {n}, {a.fanout_rate:g} msg/s",
                ["--connections", n, "--rooms", 1, "--rate", a.fanout_rate, "--duration", a.duration,
                 "--drain", a.drain, "--settle", 1, "--ramp-timeout", a.ramp_timeout])
    if name == "rooms":
        n = a.rooms_count * a.room_size
        return (f"{a.rooms_count} rooms x {a.room_size}, {a.rooms_rate:g} msg/s",
                ["--connections", n, "--rooms", a.rooms_count, "--rate", a.rooms_rate, "--duration", a.duration,
                 "--drain", a.drain, "--settle", 1, "--ramp-timeout", a.ramp_timeout])
    if name == "probe":
        n = a.probe_connections
        return (f"open-files limit probe ({n} attempted)",
                ["--connections", n, "--rooms", 1, "--procs", 2, "--stop-after-refusals", a.probe_stop_after,
                 "--handshake-timeout", 20, "--rate", 10, "--duration", 1, "--drain", 10, "--settle", 2,
                 "--ramp-timeout", a.probe_ramp_timeout])
    raise ValueError(name)


def run_one(a, target, scenario, run, out_root):
    title, largs = scenario_args(scenario, a)
    result = {"target": target, "scenario": scenario, "run": run, "title": title}
    t0 = time.monotonic()
    with run_harness(out_root, f"{scenario}-{target}-{run}") as h:
        try:
            broker, bootstrap = start_broker(h)
            if target == "psdm_socketd":
                server, port, pids = start_worker(h, a.build_dir, bootstrap)
            else:
                server, port, pids = start_reference(h, bootstrap)
            argv = [os.path.join(a.build_dir, "psdm_loadgen"), "--port", port, "--path", "/" + SOCKETIO_PATH + "/",
                    "--bootstrap", bootstrap, "--topic", "elog", "--label", f"{scenario}-{target}-{run}",
                    "--broker-pid", broker.pid, "--spin-us", a.spin_us] + \
                [x for pid in pids for x in ("--server-pid", pid)] + largs
            argv = [str(x) for x in argv]
            with open(os.path.join(h.run_dir, "loadgen.cmd"), "w") as f:
                f.write(" ".join(argv) + "\n")
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            busy0, ours0, w0 = machine_busy_seconds(), cpu_seconds(pids + [broker.pid]), time.monotonic()
            out_path = os.path.join(h.run_dir, "loadgen.json")
            with open(out_path, "w") as out:
                lg = h.spawn("loadgen", argv, stdout=out)  # stderr: loadgen.log
            try:
                lg.popen.wait(timeout=a.scenario_timeout)
            except subprocess.TimeoutExpired:
                result["error"] = f"load generator still running after {a.scenario_timeout} s: stopped"
            stop(lg)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.monotonic() - w0
            ours = (cpu_seconds(pids + [broker.pid]) - ours0 + (ru1.ru_utime + ru1.ru_stime)
                    - (ru0.ru_utime + ru0.ru_stime))
            busy = machine_busy_seconds() - busy0
            result["foreign_cpu_cores"] = round(max(0.0, busy - ours) / wall, 3) if wall > 0 else 0
            result["server_alive"] = server.alive()
            with open(out_path) as f:
                lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
            if lines:
                result.update(json.loads(lines[-1]))
            elif "error" not in result:
                result["error"] = f"load generator exited {lg.popen.returncode} without a result:\n{tail(lg.log)}"
            if not server.alive():
                result["error"] = (result.get("error", "") + f" server exited ({server.popen.returncode}):\n"
                                   + tail(server.log)).strip()
        except harness.HarnessError as e:
            result["error"] = str(e)
    result["wall_s"] = round(time.monotonic() - t0, 1)
    return result


# ---------------------------------------------------------------------------- Apache part
# Handshake rate directly to the worker's `listen` port, through Apache's handoff
# (mod_psdm_socket) and through Apache ProxyPass to the same port (today's path); then
# Apache's cost (busy threads, all threads, RSS) per held websocket for the handoff,
# ProxyPass and the module's TLS relay. Tool: build/psdm_wsbench (bench/wsbench.cpp).

APACHE2 = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
APACHE_SCENARIOS = ("handshake", "apache-hold")
HANDSHAKE_TARGETS = ("direct", "handoff", "proxypass")
HOLD_TARGETS = ("handoff", "proxypass", "tls-relay")
APACHE_LABEL = {"direct": "direct to the worker's listen port", "handoff": "Apache + mod_psdm_socket handoff",
                "proxypass": "Apache ProxyPass ws:// (mod_proxy_wstunnel)",
                "tls-relay": "Apache mod_ssl + mod_psdm_socket relay (wss://)"}
# mpm_event sized so that Apache is not the bottleneck: 2 048 threads at most (enough for
# every ProxyPass websocket held), 128 started, idle children never reaped mid-run.
APACHE_MPM = ("StartServers 2\nServerLimit 32\nThreadLimit 64\nThreadsPerChild 64\nMaxRequestWorkers 2048\n"
              "MinSpareThreads 64\nMaxSpareThreads 2048\nMaxConnectionsPerChild 0\nListenBacklog 4096\n")


def start_stack_worker(h, build, bootstrap):
    """The worker with both a `listen` port and the handoff socket SOCK_DIR/handoff.sock
    (Apache's children are www-data when we run as root, as in tests/integration/stack.py).
    Returns the process, the port and the socket's path."""
    port = harness.free_port()
    sock = os.path.join(h.sock_dir, "handoff.sock")
    conf = os.path.join(h.run_dir, "psdm_socketd.conf")
    peer = "www-data" if os.geteuid() == 0 else str(os.geteuid())
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\n"
                f"handoff_socket = {sock}\nhandoff_socket_mode = 0666\nhandoff_allowed_peers = {peer}\n"
                f"kafka.bootstrap.servers = {bootstrap}\n"
                "kafka.fetch.wait.max.ms = 5\n"
                "topics = elog\n"
                "authz = allow-all\n"
                "log_level = warn\n")
    p = h.spawn("server", [os.path.join(build, "psdm_socketd"), "-c", conf])
    h.wait_for(p, lambda: harness.port_open(port) and os.path.exists(sock),
               f"listening on 127.0.0.1:{port} and {sock}", 20)
    return p, port, sock


def apache_conf(run_dir, sock_dir, port, kind, build, sock=None, worker_port=None, cert=None):
    # A short DocumentRoot (/tmp/psdm-bench-XXXX/htdocs, as deep as /var/www/html): the handoff
    # location maps to it, and httpd stats each of its directories per request.
    htdocs = os.path.join(sock_dir, "htdocs")
    os.makedirs(htdocs, exist_ok=True)
    mods = ["mpm_event", "authz_core", "env", "status"]
    if kind == "proxypass":
        mods += ["proxy", "proxy_http", "proxy_wstunnel"]
    if kind == "tls-relay":
        mods += ["ssl", "socache_shmcb"]
    conf = [f"ServerRoot {run_dir}", f"ServerName 127.0.0.1:{port}", f"Listen 127.0.0.1:{port}",
            f"PidFile {run_dir}/httpd.pid", f"DefaultRuntimeDir {sock_dir}", f"Mutex file:{sock_dir} default",
            f"ErrorLog {run_dir}/httpd.log", "LogLevel warn", f"DocumentRoot {htdocs}"]
    conf += [f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in mods]
    if os.geteuid() == 0:  # httpd refuses to serve as root; Debian's web user then
        conf += ["User www-data", "Group www-data"]
    conf.append(APACHE_MPM)
    # As Debian's apache2.conf: no .htaccess lookups (each would cost an open() per directory
    # of DocumentRoot per request). mod_status only for BusyWorkers: ExtendedStatus Off, so
    # that the instrument does not add a times() per request.
    conf += ["<Directory />", "  AllowOverride None", "</Directory>",
             "ExtendedStatus Off", "<Location /server-status>", "  SetHandler server-status", "</Location>"]
    if kind in ("handoff", "tls-relay"):
        conf += [f"LoadModule psdm_socket_module {build}/mod_psdm_socket.so", f"PsdmSocketWorker unix:{sock}",
                 '<LocationMatch "^/[^/]+_socketio/">', "  SetHandler psdm-socket", "  SetEnv WEBAUTH_USER bench",
                 "  PsdmSocketUser env:WEBAUTH_USER", "</LocationMatch>"]
    if kind == "tls-relay":
        conf += ["SSLEngine on", f"SSLCertificateFile {cert[1]}", f"SSLCertificateKeyFile {cert[0]}",
                 f"SSLSessionCache shmcb:{sock_dir}/ssl_scache(512000)"]
    if kind == "proxypass":
        conf.append(f'ProxyPass "/bench_socketio/" "ws://127.0.0.1:{worker_port}/bench_socketio/"')
    return "\n".join(conf) + "\n"


def apache_status(port, tls=False):
    """mod_status ?auto as a dict (None when Apache does not answer)."""
    import ssl
    import urllib.request
    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the bench's own self-signed certificate
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/server-status?auto"
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def start_apache(h, run_dir, kind, build, **kw):
    """Apache for path `kind`, its config and logs in run_dir (its stdout and stderr:
    apache2-KIND.log in the harness's run directory). Returns the process and its port."""
    port = harness.free_port()
    conf = os.path.join(run_dir, "httpd.conf")
    with open(conf, "w") as f:
        f.write(apache_conf(run_dir, h.sock_dir, port, kind, build, **kw))
    check = subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(f"apache2 -t rejected {conf}:\n{check.stderr}")
    p = h.spawn(f"apache2-{kind}", [APACHE2, "-f", conf, "-DFOREGROUND"])
    h.wait_for(p, lambda: apache_status(port, kind == "tls-relay") is not None, f"serving 127.0.0.1:{port}", 20)
    return p, port


def apache_pids(proc):
    return [proc.pid] + children_of(proc.pid)


def proc_status_sum(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"openssl req failed: {r.stderr}")
    return key, crt


def wsbench_argv(a, port, label, *more):
    return [os.path.join(a.build_dir, "psdm_wsbench"), "--port", str(port), "--path", "/" + SOCKETIO_PATH + "/",
            "--label", label] + [str(x) for x in more]


def run_wsbench(h, argv, name, timeout):
    """Runs psdm_wsbench to completion (NAME.cmd, NAME.json, NAME.log in the harness's run
    directory); returns its last JSON line."""
    with open(os.path.join(h.run_dir, name + ".cmd"), "w") as f:
        f.write(" ".join(argv) + "\n")
    out_path = os.path.join(h.run_dir, name + ".json")
    with open(out_path, "w") as out:
        p = h.spawn(name, argv, stdout=out)
    try:
        p.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"psdm_wsbench still running after {timeout} s: stopped")
    finally:
        stop(p)
    with open(out_path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"psdm_wsbench exited {p.popen.returncode} without a result:\n{tail(p.log)}")
    return json.loads(lines[-1])


def handshake_runs(a, out_root, report):
    """Scenario `handshake`: one broker, one worker (listen + handoff socket), one Apache
    with the handoff and one with ProxyPass; runs interleaved direct, handoff, proxypass."""
    results = []
    with run_harness(out_root, "handshake") as h:
        try:
            broker, bootstrap = start_broker(h)
            worker, wport, sock = start_stack_worker(h, a.build_dir, bootstrap)
            ports, apaches = {"direct": wport}, {}
            for kind in ("handoff", "proxypass"):
                d = os.path.join(h.run_dir, "apache-" + kind)
                os.makedirs(d, exist_ok=True)
                apaches[kind], ports[kind] = start_apache(h, d, kind, a.build_dir, sock=sock, worker_port=wport)
            daemons = [broker, worker] + list(apaches.values())
            for t in HANDSHAKE_TARGETS:  # warm-up, not measured: Apache's children, the worker's pools
                run_wsbench(h, wsbench_argv(a, ports[t], f"warmup-{t}", "--mode", "rate", "--duration", 1,
                                            "--warmup", 0, "--concurrency", a.handshake_concurrency),
                            f"warmup-{t}", 30)
            for run in range(1, a.apache_runs + 1):
                for t in HANDSHAKE_TARGETS:
                    name = f"{t}-{run}"
                    pids_apache = apache_pids(apaches[t]) if t in apaches else []
                    ours = [worker.pid, broker.pid] + [p for k in apaches for p in apache_pids(apaches[k])]
                    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    busy0, ours0, w0 = machine_busy_seconds(), cpu_seconds(ours), time.monotonic()
                    wcpu0, acpu0 = cpu_seconds([worker.pid]), cpu_seconds(pids_apache)
                    r = {"target": t, "scenario": "handshake", "run": run, "title": "handshake rate"}
                    try:
                        r.update(run_wsbench(h, wsbench_argv(a, ports[t], name, "--mode", "rate", "--duration",
                                                             a.handshake_duration, "--warmup", 0, "--concurrency",
                                                             a.handshake_concurrency), name,
                                             a.handshake_duration + 60))
                    except harness.HarnessError as e:
                        r["error"] = str(e)
                    wall = time.monotonic() - w0
                    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    ours_cpu = (cpu_seconds(ours) - ours0 + (ru1.ru_utime + ru1.ru_stime)
                                - (ru0.ru_utime + ru0.ru_stime))
                    r["foreign_cpu_cores"] = round(max(0.0, machine_busy_seconds() - busy0 - ours_cpu) / wall, 3)
                    r["worker_cpu_s"] = round(cpu_seconds([worker.pid]) - wcpu0, 3)
                    r["apache_cpu_s"] = (round(cpu_seconds(apache_pids(apaches[t])) - acpu0, 3) if t in apaches
                                         else 0.0)
                    r["wall_s"] = round(wall, 1)
                    for p in daemons:
                        if not p.alive():
                            r["error"] = (r.get("error", "") + f" {p.name} exited ({p.popen.returncode}):\n"
                                          + tail(p.log)).strip()
                    results.append(r)
                    report(r)
                    if "error" in r and any(not p.alive() for p in daemons):
                        return results
        except harness.HarnessError as e:
            results.append({"target": "direct", "scenario": "handshake", "run": 0, "error": str(e), "wall_s": 0})
            report(results[-1])
    return results


def hold_run(a, out_root, kind, run):
    """Scenario `apache-hold`, one path: a fresh broker, worker and Apache; warm-up; then
    Apache's busy threads (mod_status), threads (/proc) and RSS (sum of VmRSS of the
    apache2 processes) before and while --hold-connections websockets are held."""
    r = {"target": kind, "scenario": "apache-hold", "run": run, "title": "held websockets"}
    t0 = time.monotonic()
    tls = kind == "tls-relay"
    with run_harness(out_root, f"apache-hold-{kind}-{run}") as h:
        try:
            broker, bootstrap = start_broker(h)
            worker, wport, sock = start_stack_worker(h, a.build_dir, bootstrap)
            apache, port = start_apache(h, h.run_dir, kind, a.build_dir, sock=sock, worker_port=wport,
                                        cert=make_cert(h.sock_dir) if tls else None)
            tls_arg = ["--tls"] if tls else []
            run_wsbench(h, wsbench_argv(a, port, "warmup", "--mode", "rate", "--duration", 1, "--warmup", 0,
                                        "--concurrency", 16, *tls_arg), "warmup", 30)
            time.sleep(a.apache_settle)  # closed connections leave the children

            def sample():
                st = apache_status(port, tls) or {}
                pids = apache_pids(apache)
                return {"busy": int(st.get("BusyWorkers", -1)), "idle": int(st.get("IdleWorkers", -1)),
                        "threads": proc_status_sum(pids, "Threads"), "rss_kb": proc_status_sum(pids, "VmRSS"),
                        "procs": len(pids)}
            before = sample()
            argv = wsbench_argv(a, port, f"hold-{kind}-{run}", "--mode", "hold", "--connections",
                                a.hold_connections, "--window", 100, "--handshake-timeout", 30, "--ramp-timeout", 90,
                                "--max-hold", 120, *tls_arg)
            with open(os.path.join(h.run_dir, "hold.cmd"), "w") as f:
                f.write(" ".join(argv) + "\n")
            # Not h.spawn: the hold ends when its stdin closes, so it needs a pipe there.
            log_path = os.path.join(h.run_dir, "hold.log")
            with open(log_path, "w") as err:
                p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.PIPE, text=True,
                                     start_new_session=True)
            h.procs.append(harness.Process("psdm_wsbench", p, log_path))
            import select
            held, deadline = None, time.monotonic() + 120
            lines = []
            while held is None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                    raise BenchError("psdm_wsbench: websockets not held within 120 s")
                line = p.stdout.readline()
                if not line:
                    raise BenchError(f"psdm_wsbench exited ({p.wait()}) while opening:\n{tail(log_path)}")
                lines.append(line)
                if line.startswith("{") and '"phase":"held"' in line:
                    held = json.loads(line)
            time.sleep(a.apache_settle)
            during = sample()
            try:  # closing its stdin (communicate does) ends the hold
                rest, _ = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                raise BenchError("psdm_wsbench did not end the hold within 30 s")
            lines += rest.splitlines()
            with open(os.path.join(h.run_dir, "hold.json"), "w") as f:
                f.write("".join(x if x.endswith("\n") else x + "\n" for x in lines))
            final = [ln for ln in rest.splitlines() if ln.startswith("{")]
            if final:
                r.update(json.loads(final[-1]))
            n = held["held"]
            r.update({"held": n, "before": before, "during": during})
            if n > 0:
                r["apache_busy_per_ws"] = round((during["busy"] - before["busy"]) / n, 4)
                r["apache_threads_per_ws"] = round((during["threads"] - before["threads"]) / n, 4)
                r["apache_rss_per_ws_bytes"] = round((during["rss_kb"] - before["rss_kb"]) * 1024 / n, 1)
            for q in (broker, worker, apache):
                if not q.alive():
                    r["error"] = f"{q.name} exited ({q.popen.returncode}):\n{tail(q.log)}"
        except harness.HarnessError as e:
            r["error"] = str(e)
    r["wall_s"] = round(time.monotonic() - t0, 1)
    return r


# ---------------------------------------------------------------------------- report

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def med(results, target, scenario, key):
    return median([r.get(key) for r in results
                   if r["target"] == target and r["scenario"] == scenario and "error" not in r])


def fmt_num(v, unit="", digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def fmt_kb(v):
    return "n/a" if v is None else f"{v / 1024:.1f} KB"


def fmt_ms(v):
    if v is None or v < 0:
        return "n/a"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def ratio(a, b, less_is_better=False):
    if a is None or b is None or a <= 0 or b <= 0:
        return ""
    r = b / a if less_is_better else a / b
    word = " less" if less_is_better else ""
    return f"{r:.1f}x{word}" if r < 100 else f"{r:.0f}x{word}"


def build_table(results, a):
    rows = []
    W, R = "psdm_socketd", "reference"
    targets = [t for t in TARGETS if t in a.targets]

    def row(title, metric, fn, rat=None):
        vals = {t: fn(t) for t in targets}
        rows.append((title, metric, vals.get(W, ""), vals.get(R, ""), rat or ""))

    def errors(scenario, target):
        return sum(1 for r in results if r["target"] == target and r["scenario"] == scenario and "error" in r)

    for sc in a.scenarios:
        if sc in APACHE_SCENARIOS:
            continue
        title, _ = scenario_args(sc, a)
        if sc == "idle":
            row(title, "connections held", lambda t: fmt_num(med(results, t, sc, "held_after_ramp")))
            row("", "RSS per connection", lambda t: fmt_kb(med(results, t, sc, "rss_per_conn_bytes")),
                ratio(med(results, W, sc, "rss_per_conn_bytes"), med(results, R, sc, "rss_per_conn_bytes"), True))
            row("", "ramp (connections/s)",
                lambda t: fmt_num(safe_div(med(results, t, sc, "held_after_ramp"), med(results, t, sc, "ramp_s"))),
                ratio(safe_div(med(results, W, sc, "held_after_ramp"), med(results, W, sc, "ramp_s")),
                      safe_div(med(results, R, sc, "held_after_ramp"), med(results, R, sc, "ramp_s"))))
            row("", "server CPU per connection opened",
                lambda t: fmt_num(safe_div(1e6 * (med(results, t, sc, "server_cpu_ramp_s") or 0),
                                           med(results, t, sc, "held_after_ramp")), " us"))
            row("", f"server CPU idle, {a.hold:g} s (cores)",
                lambda t: fmt_num(safe_div(med(results, t, sc, "server_cpu_hold_s"), a.hold), "", 3),
                ratio(med(results, W, sc, "server_cpu_hold_s"), med(results, R, sc, "server_cpu_hold_s"), True))
            row("", f"held after {a.hold:g} s idle (pinged)", lambda t: fmt_num(med(results, t, sc, "open_at_end")))
        elif sc in ("fanout", "rooms"):
            row(title, "deliveries/s", lambda t: fmt_num(med(results, t, sc, "deliveries_per_s")),
                ratio(med(results, W, sc, "deliveries_per_s"), med(results, R, sc, "deliveries_per_s")))
            row("", "delivered (of expected)",
                lambda t: fmt_num(med(results, t, sc, "delivered_pct"), "%", 2))
            row("", "latency p50 / p99 (ms)",
                lambda t: f"{fmt_ms(med(results, t, sc, 'lat_p50_ms'))} / {fmt_ms(med(results, t, sc, 'lat_p99_ms'))}",
                ratio(med(results, R, sc, "lat_p99_ms"), med(results, W, sc, "lat_p99_ms")) + " (p99)"
                if med(results, W, sc, "lat_p99_ms") and med(results, R, sc, "lat_p99_ms") else "")
            row("", "server CPU (cores)",
                lambda t: fmt_num(safe_div(med(results, t, sc, "server_cpu_window_s"),
                                           med(results, t, sc, "window_s")), "", 2))
            row("", "server CPU per delivery",
                lambda t: fmt_num(safe_div(1e6 * (med(results, t, sc, "server_cpu_window_s") or 0),
                                           med(results, t, sc, "delivered")), " us", 1),
                ratio(safe_div(med(results, W, sc, "server_cpu_window_s"), med(results, W, sc, "delivered")),
                      safe_div(med(results, R, sc, "server_cpu_window_s"), med(results, R, sc, "delivered")), True))
            row("", "connections held", lambda t: fmt_num(med(results, t, sc, "held_after_ramp")))
        elif sc == "probe":
            row(title, "connections held", lambda t: fmt_num(med(results, t, sc, "held_after_ramp"))
                if t in a.probe_targets else "not run")
            row("", "past the limit", lambda t: probe_refusals(results, t) if t in a.probe_targets else "")
            row("", "alive, delivering after",
                lambda t: probe_serving(results, t) if t in a.probe_targets else "")
        for t in targets:
            if errors(sc, t):
                rows.append(("", f"  ({t}: {errors(sc, t)} run(s) failed, see raw results)", "", "", ""))
    return rows


def safe_div(x, y, default=None):
    if x is None or y is None or y == 0:
        return default
    return x / y


def probe_refusals(results, target):
    rs = [r for r in results if r["target"] == target and r["scenario"] == "probe" and "error" not in r]
    if not rs:
        return "n/a"
    r = rs[0]
    f = r.get("ramp_failures", {})
    statuses = {k: v for k, v in r.get("http_status", {}).items() if k != "101"}
    parts = []
    if statuses:
        parts.append("HTTP " + ",".join(f"{k}x{v}" for k, v in statuses.items()))
    for k in ("closed_before_upgrade", "reset_before_upgrade", "connect_error", "handshake_timeout", "ramp_timeout", "closed_before_join",
              "protocol_error", "local_fd_limit"):
        if f.get(k):
            parts.append(f"{k} {f[k]}")
    return "; ".join(parts) or "none refused"


def probe_serving(results, target):
    rs = [r for r in results if r["target"] == target and r["scenario"] == "probe" and "error" not in r]
    if not rs:
        return "n/a"
    r = rs[0]
    return f"{'alive' if r.get('server_alive_end') else 'DEAD'}, {r.get('delivered_pct', 0):.2f}% delivered"


def target_checks(results, a):
    W = "psdm_socketd"
    checks = []

    def add(name, ok, detail):
        checks.append((name, "ok" if ok else "MISSED", detail))

    if "idle" in a.scenarios:
        held = med(results, W, "idle", "held_after_ramp")
        rss = med(results, W, "idle", "rss_per_conn_bytes")
        add(f"idle RSS <= 4 KB/connection at {a.idle_connections}",
            held == a.idle_connections and rss is not None and rss <= 4096,
            f"{fmt_kb(rss)} with {fmt_num(held)} held")
    if "probe" in a.scenarios:
        rs = [r for r in results if r["target"] == W and r["scenario"] == "probe" and "error" not in r]
        if rs:
            r = rs[0]
            f = r.get("ramp_failures", {})
            refused = r.get("attempted", 0) - r.get("held_after_ramp", 0)
            unclean = f.get("handshake_timeout", 0) + f.get("ramp_timeout", 0) + f.get("protocol_error", 0)
            add("connections up to the open-files limit, refused cleanly past it",
                r.get("held_after_ramp", 0) >= 19800 and refused > 0 and unclean == 0 and r.get("server_alive_end")
                and r.get("delivered_pct", 0) >= 100.0,
                f"{r.get('held_after_ramp')} held, {refused} refused ({probe_refusals(results, W)}), "
                f"{probe_serving(results, W)}")
        else:
            add("connections up to the open-files limit", False, "probe failed")
    if "fanout" in a.scenarios:
        p99 = med(results, W, "fanout", "lat_p99_ms")
        pct = med(results, W, "fanout", "delivered_pct")
        dps = med(results, W, "fanout", "deliveries_per_s")
        want = a.fanout_clients * a.fanout_rate
        add(f"one room: {want:,.0f} deliveries/s, all delivered, p99 < 25 ms",
            pct == 100.0 and p99 is not None and p99 < 25 and dps is not None and dps >= 0.98 * want,
            f"{fmt_num(dps)}/s, {fmt_num(pct, '%', 2)}, p99 {fmt_ms(p99)} ms")
    if "rooms" in a.scenarios:
        pct = med(results, W, "rooms", "delivered_pct")
        add(f"{a.rooms_count} rooms x {a.room_size} at {a.rooms_rate:g} msg/s, all delivered", pct == 100.0,
            f"{fmt_num(pct, '%', 2)}, p99 {fmt_ms(med(results, W, 'rooms', 'lat_p99_ms'))} ms")
    return checks


def apache_tables(results, a):
    """The Apache part's two tables: (title, header, rows) each."""
    tables = []
    if "handshake" in a.scenarios:
        d = med(results, "direct", "handshake", "handshakes_per_s")
        rows = []
        for t in HANDSHAKE_TARGETS:
            v = med(results, t, "handshake", "handshakes_per_s")
            hs = med(results, t, "handshake", "handshakes")
            cpu_w = safe_div(1e6 * (med(results, t, "handshake", "worker_cpu_s") or 0), hs)
            cpu_a = safe_div(1e6 * (med(results, t, "handshake", "apache_cpu_s") or 0), hs)
            fails = [r for r in results if r["target"] == t and r["scenario"] == "handshake" and "error" not in r]
            nfail = sum(sum(r.get("failures", {}).values()) for r in fails)
            errs = sum(1 for r in results if r["target"] == t and r["scenario"] == "handshake" and "error" in r)
            rows.append((APACHE_LABEL[t], fmt_num(v), f"{v / d:.2f}" if v and d else "n/a",
                         f"{fmt_ms(med(results, t, 'handshake', 'lat_p50_ms'))} / "
                         f"{fmt_ms(med(results, t, 'handshake', 'lat_p99_ms'))}",
                         f"{fmt_num(cpu_w, ' us')} + {fmt_num(cpu_a, ' us')}",
                         str(nfail) + (f" ({errs} run(s) failed)" if errs else "")))
        tables.append((f"WebSocket handshakes/s ({a.handshake_concurrency} in flight, {a.handshake_duration:g} s, "
                       f"median of {a.apache_runs} run(s))",
                       ("path", "handshakes/s", "vs direct", "p50 / p99 (ms)", "CPU/handshake worker + Apache",
                        "failed"), rows))
    if "apache-hold" in a.scenarios:
        rows = []
        for t in HOLD_TARGETS:
            errs = sum(1 for r in results if r["target"] == t and r["scenario"] == "apache-hold" and "error" in r)
            rows.append((APACHE_LABEL[t], fmt_num(med(results, t, "apache-hold", "held")),
                         fmt_num(med(results, t, "apache-hold", "apache_busy_per_ws"), "", 3),
                         fmt_num(med(results, t, "apache-hold", "apache_threads_per_ws"), "", 3),
                         fmt_kb(med(results, t, "apache-hold", "apache_rss_per_ws_bytes"))
                         + (f" ({errs} run(s) failed)" if errs else "")))
        tables.append((f"Apache's cost per held websocket ({a.hold_connections} idle websockets, "
                       f"median of {a.apache_hold_runs} run(s))",
                       ("path", "held", "busy threads/ws", "threads/ws", "RSS/ws"), rows))
    return tables


def apache_checks(results, a):
    checks = []
    if "handshake" in a.scenarios:
        d = med(results, "direct", "handshake", "handshakes_per_s")
        h = med(results, "handoff", "handshake", "handshakes_per_s")
        pp = med(results, "proxypass", "handshake", "handshakes_per_s")
        checks.append(("handoff handshakes/s >= 0.5 x direct", "ok" if h and d and h >= 0.5 * d else "MISSED",
                       f"{h / d:.2f} x ({fmt_num(h)} vs {fmt_num(d)})" if h and d else "n/a"))
        checks.append(("handoff handshakes/s >= 2 x ProxyPass", "ok" if h and pp and h >= 2 * pp else "MISSED",
                       f"{h / pp:.2f} x ({fmt_num(h)} vs {fmt_num(pp)})" if h and pp else "n/a"))
    if "apache-hold" in a.scenarios:
        b = med(results, "handoff", "apache-hold", "apache_busy_per_ws")
        th = med(results, "handoff", "apache-hold", "apache_threads_per_ws")
        checks.append(("zero Apache threads per held websocket (handoff)",
                       "ok" if b is not None and th is not None and b < 0.01 and th < 0.01 else "MISSED",
                       f"busy {fmt_num(b, '', 3)}, all threads {fmt_num(th, '', 3)} per websocket"))
    return checks


def print_apache(results, a):
    for title, hdr, rows in apache_tables(results, a):
        widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
        print()
        print(title)
        for r in [hdr] + rows:
            print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    checks = apache_checks(results, a)
    if checks:
        print("\nApache handoff targets")
        for name, status, detail in checks:
            print(f"  {status:6}  {name}: {detail}")


def print_table(rows, a):
    hdr = ("scenario", "metric", "psdm_socketd", "reference", "ratio")
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(5)]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()  # noqa: E731
    print()
    print(f"medians of {a.runs} run(s) of psdm_socketd and {a.ref_runs} of the reference per scenario "
          f"({a.probe_runs} of the probe)")
    print(line(hdr))
    for r in rows:
        if r[0]:
            print()
        print(line(r))


def write_raw(results, out_root, stamp):
    keys = ["target", "scenario", "run", "error", "wall_s", "foreign_cpu_cores", "connections", "rooms",
            "held_after_ramp", "ramp_s", "rss_before_kb", "rss_after_kb", "rss_per_conn_bytes", "produced",
            "expected", "delivered", "delivered_pct", "duplicates", "wrong_room", "deliveries_per_s", "lat_p50_ms",
            "lat_p90_ms", "lat_p99_ms", "lat_max_ms", "server_cpu_ramp_s", "server_cpu_window_s", "window_s",
            "broker_cpu_window_s", "loadgen_cpu_total_s", "open_at_end", "closed_by_server", "server_alive_end",
            "handshakes", "handshakes_per_s", "worker_cpu_s", "apache_cpu_s", "held", "apache_busy_per_ws",
            "apache_threads_per_ws", "apache_rss_per_ws_bytes"]
    paths = []
    for name in (f"results-{stamp}", "results-latest"):
        jp, cp = os.path.join(out_root, name + ".json"), os.path.join(out_root, name + ".csv")
        with open(jp, "w") as f:
            json.dump(results, f, indent=1)
        with open(cp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            for r in results:
                w.writerow({k: (str(r.get(k)).splitlines()[0] if k == "error" and r.get(k) else r.get(k))
                            for k in keys})
        paths += [jp, cp]
    return paths


def run_summary(r):
    if r["scenario"] == "handshake":
        return (f"{r.get('handshakes_per_s', 0):,.0f} handshakes/s, p50/p99 {fmt_ms(r.get('lat_p50_ms'))}/"
                f"{fmt_ms(r.get('lat_p99_ms'))} ms, {sum(r.get('failures', {}).values())} failed")
    if r["scenario"] == "apache-hold":
        return (f"held {r.get('held')}/{r.get('attempted')} in {r.get('ramp_s', 0):.1f} s; Apache per websocket: "
                f"busy threads {r.get('apache_busy_per_ws')}, threads {r.get('apache_threads_per_ws')}, "
                f"RSS {fmt_kb(r.get('apache_rss_per_ws_bytes'))}; open at end {r.get('open_at_end')}")
    s = f"held {r.get('held_after_ramp')}/{r.get('attempted')} in {r.get('ramp_s', 0):.1f} s"
    if r["scenario"] == "idle":
        return s + f", RSS {fmt_kb(r.get('rss_per_conn_bytes'))}/connection"
    return s + (f", {r.get('deliveries_per_s', 0):,.0f} deliveries/s, {r.get('delivered_pct', 0):.2f}% delivered, "
                f"p50/p99 {fmt_ms(r.get('lat_p50_ms'))}/{fmt_ms(r.get('lat_p99_ms'))} ms, "
                f"server CPU {r.get('server_cpu_window_s', 0):.1f} s")


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", default=None, help="results and logs (default BUILD/bench)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each scenario on psdm_socketd (median reported)")
    ap.add_argument("--ref-runs", type=int, default=1,
                    help="runs of each scenario on the reference, the baseline (median reported)")
    ap.add_argument("--probe-runs", type=int, default=1, help="runs of the open-files limit probe, per target")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--idle-connections", type=int, default=15000)
    ap.add_argument("--fanout-clients", type=int, default=10000)
    ap.add_argument("--fanout-rate", type=float, default=20)
    ap.add_argument("--rooms-count", type=int, default=1000)
    ap.add_argument("--room-size", type=int, default=10)
    ap.add_argument("--rooms-rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=6, help="seconds of production per message scenario")
    ap.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    ap.add_argument("--settle", type=float, default=3, help="idle seconds before RSS is read")
    ap.add_argument("--hold", type=float, default=26,
                    help="idle seconds after that, for CPU while idle (more than the 25 s ping interval, so "
                         "that every connection is pinged)")
    ap.add_argument("--ramp-timeout", type=float, default=75, help="seconds to open a scenario's connections")
    ap.add_argument("--probe-connections", type=int, default=20200,
                    help="connections the probe attempts (two client processes)")
    ap.add_argument("--probe-stop-after", type=int, default=100,
                    help="a probe client process stops after this many refusals")
    ap.add_argument("--probe-ramp-timeout", type=float, default=90, help="seconds the probe may take to ramp")
    ap.add_argument("--probe-targets", default="psdm_socketd",
                    help="targets the probe runs on (the reference too: psdm_socketd,reference; ~2 more minutes)")
    ap.add_argument("--spin-us", type=int, default=0,
                    help="client processes poll without sleeping this long after traffic (0: always sleep)")
    ap.add_argument("--report", metavar="RESULTS.json",
                    help="print the table of saved raw results (same scenario options) instead of running")
    ap.add_argument("--scenario-timeout", type=float, default=240, help="hard bound of one scenario run")
    g = ap.add_argument_group("Apache part (scenarios handshake, apache-hold)")
    g.add_argument("--apache-runs", type=int, default=3, help="runs of the handshake rate per path (median)")
    g.add_argument("--handshake-duration", type=float, default=5, help="seconds per handshake-rate run")
    g.add_argument("--handshake-concurrency", type=int, default=32, help="handshakes in flight")
    g.add_argument("--hold-connections", type=int, default=1000, help="websockets held per Apache path")
    g.add_argument("--apache-hold-runs", type=int, default=1, help="runs of the hold per Apache path (median)")
    g.add_argument("--apache-settle", type=float, default=2,
                   help="seconds after the warm-up and after the ramp before Apache is sampled")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.targets = choices(ap, a.targets, TARGETS, "target")
    a.scenarios = choices(ap, a.scenarios, SCENARIOS, "scenario")
    a.probe_targets = [t for t in a.probe_targets.split(",") if t]
    if a.report:
        with open(a.report) as f:
            results = json.load(f)
        if any(s not in APACHE_SCENARIOS for s in a.scenarios):
            print_table(build_table(results, a), a)
        print_apache(results, a)
        if "psdm_socketd" in a.targets and any(s not in APACHE_SCENARIOS for s in a.scenarios):
            print("\npsdm_socketd targets")
            for name, status, detail in target_checks(results, a):
                print(f"  {status:6}  {name}: {detail}")
        return 0
    for b in ("psdm_loadgen", "psdm_kafka_dev", "psdm_socketd"):
        if not os.path.exists(os.path.join(a.build_dir, b)):
            ap.error(f"{a.build_dir}/{b} missing: build first (make build)")
    if any(s in APACHE_SCENARIOS for s in a.scenarios):
        for path, why in ((os.path.join(a.build_dir, "psdm_wsbench"), "build it: needs libssl-dev "
                           "(scripts/deps.sh bench), then make build"),
                          (os.path.join(a.build_dir, "mod_psdm_socket.so"), "make build"),
                          (APACHE2, "scripts/deps.sh bench"),
                          (f"{APACHE_MODULES}/mod_proxy_wstunnel.so", "scripts/deps.sh bench")):
            if not os.path.exists(path):
                ap.error(f"{path} missing: {why}")
    if "reference" in a.targets and not os.path.exists(GUNICORN):
        ap.error("gunicorn missing: scripts/deps.sh bench")
    out_root, stamp = start_run(a)
    results = []
    t_start = time.monotonic()
    plan = []
    for run in range(1, max(a.runs, a.ref_runs, a.probe_runs) + 1):
        for sc in a.scenarios:
            if sc in APACHE_SCENARIOS:
                continue
            for t in a.targets:
                runs = a.probe_runs if sc == "probe" else a.runs if t == "psdm_socketd" else a.ref_runs
                if sc == "probe" and t not in a.probe_targets:
                    runs = 0
                if run <= runs:
                    plan.append((t, sc, run))
    n_apache = (len(HANDSHAKE_TARGETS) * a.apache_runs if "handshake" in a.scenarios else 0) + \
        (len(HOLD_TARGETS) * a.apache_hold_runs if "apache-hold" in a.scenarios else 0)
    print(f"bench: {len(plan) + n_apache} scenario runs; logs and raw results in {out_root}", flush=True)
    done = [0]

    def report(r):
        done[0] += 1
        summary = r.get("error", "").splitlines()[0] if "error" in r else run_summary(r)
        foreign = r.get("foreign_cpu_cores", 0)
        note = f"  [other load on the machine: {foreign:.2f} cores]" if foreign and foreign > 0.1 else ""
        print(f"[{done[0]}/{len(plan) + n_apache} {time.monotonic() - t_start:5.0f} s] {r['scenario']:6} "
              f"{r['target']:12} run {r['run']}: {summary} ({r.get('wall_s')} s){note}", flush=True)
    try:
        for t, sc, run in plan:
            r = run_one(a, t, sc, run, out_root)
            results.append(r)
            report(r)
        if "handshake" in a.scenarios:
            results += handshake_runs(a, out_root, report)
        if "apache-hold" in a.scenarios:
            for run in range(1, a.apache_hold_runs + 1):
                for kind in HOLD_TARGETS:
                    r = hold_run(a, out_root, kind, run)
                    results.append(r)
                    report(r)
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything it started", file=sys.stderr)
        stop_all()
        if results:
            write_raw(results, out_root, stamp)
        return 130
    finally:
        stop_all()

    paths = write_raw(results, out_root, stamp)
    if plan:
        print_table(build_table(results, a), a)
    print_apache(results, a)
    if plan and "psdm_socketd" in a.targets:
        print()
        print("psdm_socketd targets")
        for name, status, detail in target_checks(results, a):
            print(f"  {status:6}  {name}: {detail}")
    noisy = [r for r in results if r.get("foreign_cpu_cores", 0) > 0.1]
    if noisy:
        print(f"\nnote: {len(noisy)} run(s) shared the machine with other load (> 0.1 core of CPU outside the "
              "bench's processes); see foreign_cpu_cores in the raw results")
    print(f"\nraw results: {paths[2]}, {paths[3]}; logs: {os.path.join(out_root, 'logs')}")
    print(f"bench: done in {time.monotonic() - t_start:.0f} s")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
