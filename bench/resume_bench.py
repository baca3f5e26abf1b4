#!/usr/bin/python3
"""`make bench`, second part: what a resume (issue 12) costs and how fast it is.

    /usr/bin/python3 bench/resume_bench.py --build-dir build [--runs 3] [--scenarios restart,replay,resume-storm]

Scenarios (bench/README.md, "Resume"):

  restart       10 000 clients through Apache's handoff in 100 rooms, 100 records/s; the
                worker is killed (-9) and a new one started at once on the same handoff
                socket while production goes on: every client reconnects and resumes from
                Kafka. Records lost / duplicated / out of order, resumes recovered, and the
                time from the restart until every client is live again.
  replay        one client resumes 50 000 records (~200 bytes) back, from the worker's
                memory and from Kafka (recovery_max_bytes = 0): records/s of the replay,
                against the live delivery of the same records to a client in the same room.
  resume-storm  1 000 clients in 10 rooms receive 20 records/s; 1 000 other clients resume
                at the same moment, each 2 000 records back, from Kafka: the first ones'
                delivery latency p50 / p99 without and with the storm.

Every run gets a fresh broker (build/psdm_kafka_dev) and a fresh worker, started, probed and
stopped with the integration tests' harness (tests/integration/harness.py) as in run_bench.py;
the clients are build/psdm_loadgen --resume. The table shows medians of --runs runs; the raw
figures of every run go to build/bench/resume-latest.json (and a time-stamped copy), logs of
every process to build/bench/logs/resume-<scenario>-<run>/.
"""
import argparse
import csv
import glob
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402 - its process handling, Apache config and helpers
from run_bench import harness  # noqa: E402 - tests/integration/harness.py, on the path run_bench set

SCENARIOS = ("restart", "replay", "resume-storm")
TOPIC = "elog"


# ---------------------------------------------------------------------------- the worker

def worker_conf(h, name, bootstrap, sock=None, **extra):
    """Writes RUN_DIR/NAME.conf; returns its path, the admin port and the direct port. Direct
    `listen` on a free port (the replay and storm clients use it), the handoff socket when
    `sock` is given, admin_listen for /metrics and /healthz; `extra`: more keys (dots as in
    the file)."""
    admin, port = harness.free_port(), harness.free_port()
    keys = {
        "listen": f"127.0.0.1:{port}",
        "admin_listen": f"127.0.0.1:{admin}",
        "kafka.bootstrap.servers": bootstrap,
        # The worker's default is 100 ms. The mock broker (psdm_kafka_dev, librdkafka's mock
        # cluster) holds every fetch that finds nothing new for the consumer's whole
        # fetch.wait.max.ms, even when a record arrives meanwhile (a real broker answers as
        # soon as there is data): every record produced while such a fetch waits would be
        # delayed by up to that long, and so would the resumes' reads from Kafka. 10 ms, as
        # the integration tests use, keeps that artefact small against what is measured.
        "kafka.fetch.wait.max.ms": "10",
        # Not kafka.auto.offset.reset = earliest: a worker starts at the latest offsets, as
        # shipped, so that a restarted one has nothing of the past and what its clients
        # missed must come from their resumes.
        "topics": TOPIC,
        "authz": "allow-all",
        "log_level": "notice",  # not info: a line per connection would cost the worker CPU
    }
    if sock:
        keys.update({"handoff_socket": sock, "handoff_socket_mode": "0666",
                     "handoff_allowed_peers": "www-data" if os.geteuid() == 0 else str(os.geteuid())})
    keys.update(extra)
    path = os.path.join(h.run_dir, f"{name}.conf")
    with open(path, "w") as f:
        f.write("".join(f"{k} = {v}\n" for k, v in keys.items()))
    return path, admin, port


def spawn_worker(h, build, name, conf):
    return h.spawn(name, [os.path.join(build, "psdm_socketd"), "-c", conf])


def healthz(admin):
    """True when the worker's /healthz answers 200 (listening and Kafka partitions assigned),
    False when it answers otherwise, None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False
    except OSError:
        return None


def wait_ready(h, proc, admin, timeout=30):
    h.wait_for(proc, lambda: healthz(admin) is True, "healthz 200 (Kafka partitions assigned)", timeout)


def scrape(admin):
    """The worker's /metrics as {name or name{labels}: value}; {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


RESUME_METRICS = {
    "resumes_recovered": 'psdm_socketd_resumes_total{outcome="recovered"}',
    "resumes_not_recovered": 'psdm_socketd_resumes_total{outcome="not_recovered"}',
    "resumes_refused": 'psdm_socketd_resumes_total{outcome="refused"}',
    "replayed_records": "psdm_socketd_replayed_records_total",
    "replay_kafka_reads": "psdm_socketd_replay_kafka_reads_total",
    "replay_kafka_records": "psdm_socketd_replay_kafka_records_total",
    "slow_consumers_closed": "psdm_socketd_slow_consumers_closed_total",
}


def resume_metrics(admin):
    """The worker's resume counters, as worker_<name> keys of a run's result."""
    m = scrape(admin)
    return {f"worker_{k}": m.get(v) for k, v in RESUME_METRICS.items()}


# ---------------------------------------------------------------------------- the clients

def loadgen_argv(a, h, label, port, bootstrap, broker_pid, more):
    return [str(x) for x in [os.path.join(a.build_dir, "psdm_loadgen"), "--port", port,
                             "--path", "/" + rb.SOCKETIO_PATH + "/", "--bootstrap", bootstrap, "--topic", TOPIC,
                             "--label", label, "--broker-pid", broker_pid, "--resume",
                             "--resume-log", os.path.join(h.run_dir, "clients")] + more]


def start_loadgen(h, argv):
    with open(os.path.join(h.run_dir, "loadgen.cmd"), "w") as f:
        f.write(" ".join(argv) + "\n")
    out = open(os.path.join(h.run_dir, "loadgen.json"), "w")
    try:
        return h.spawn("loadgen", argv, stdout=out)  # stderr: loadgen.log
    finally:
        out.close()


def finish_loadgen(h, lg, timeout):
    """Waits for the load generator; returns its JSON result (raises BenchError without one)."""
    try:
        lg.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rb.stop(lg)
        raise rb.BenchError(f"load generator still running after {timeout:.0f} s: stopped")
    with open(os.path.join(h.run_dir, "loadgen.json")) as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
    if not lines:
        raise rb.BenchError(f"load generator exited {lg.popen.returncode} without a result:\n{rb.tail(lg.log)}")
    res = json.loads(lines[-1])
    if "error" in res:
        raise rb.BenchError(f"load generator: {res['error']}\n{rb.tail(lg.log)}")
    return res


def read_clients(h):
    """The load generator's per-client lines (clients.SHARD.csv), as dicts of ints."""
    rows = []
    for path in sorted(glob.glob(os.path.join(h.run_dir, "clients.*.csv"))):
        with open(path) as f:
            for row in csv.DictReader(f):
                rows.append({k: (row[k] if k == "reason" else int(row[k])) for k in row})
    return sorted(rows, key=lambda r: r["idx"])


def log_has(proc, text):
    try:
        with open(proc.log, errors="replace") as f:
            return text in f.read()
    except OSError:
        return False


def pct(values, p):
    """The p-quantile (nearest rank) of values; None when empty."""
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]


def counts(res):
    """Loss, duplicates and order from the load generator's result."""
    return {"expected": res.get("expected"), "received": res.get("delivered"),
            "lost": (res.get("expected") or 0) - (res.get("delivered") or 0),
            "duplicates": res.get("duplicates"), "out_of_order": res["resume"].get("out_of_order"),
            "wrong_room": res.get("wrong_room"), "unexpected": res.get("unexpected"),
            "no_position": res["resume"].get("no_position"), "clients": res.get("held_after_ramp"),
            "clients_with_loss": res["resume"].get("clients_with_loss"),
            "records_produced": res["resume"].get("sent")}


# ---------------------------------------------------------------------------- scenarios

def restart_run(a, run, out_root):
    """Scenario `restart`: see the module's doc."""
    r = {"scenario": "restart", "run": run}
    with rb.run_harness(out_root, f"resume-restart-{run}") as h:
        broker = h.start_broker(topics=[TOPIC], partitions=a.restart_partitions, timeout=15)
        sock = os.path.join(h.sock_dir, "handoff.sock")
        conf1, admin1, _ = worker_conf(h, "worker1", broker.bootstrap, sock=sock)
        # The new worker: the same configuration on the same handoff socket, but another admin
        # port (the first one's may still be in TIME_WAIT from our scrapes).
        conf2, admin2, _ = worker_conf(h, "worker2", broker.bootstrap, sock=sock)
        w1 = spawn_worker(h, a.build_dir, "worker1", conf1)
        wait_ready(h, w1, admin1)
        apache_dir = os.path.join(h.run_dir, "apache-handoff")
        os.makedirs(apache_dir, exist_ok=True)
        apache, aport = rb.start_apache(h, apache_dir, "handoff", a.build_dir, sock=sock)
        duration = a.restart_steady + a.restart_after
        argv = loadgen_argv(a, h, f"restart-{run}", aport, broker.bootstrap, broker.proc.pid, [
            "--connections", a.restart_clients, "--rooms", a.restart_rooms, "--procs", a.restart_procs,
            "--partitions", a.restart_partitions, "--rate", a.restart_rate, "--duration", duration,
            "--settle", 2, "--drain", a.restart_drain, "--ramp-timeout", 120,
            "--backoff-min", a.backoff_min, "--backoff-max", a.backoff_max])
        lg = start_loadgen(h, argv)
        h.wait_for(lg, lambda: log_has(lg, "producing"), "clients joined, production started", 200)
        time.sleep(a.restart_steady)  # steady delivery first
        t_kill = time.time()
        os.kill(w1.pid, signal.SIGKILL)
        w1.popen.wait()
        t_restart = time.time()  # the new worker's process start
        w2 = spawn_worker(h, a.build_dir, "worker2", conf2)
        r["kill_to_start_ms"] = round((t_restart - t_kill) * 1000, 1)
        t_admin = t_ready = None
        deadline = time.monotonic() + 60
        while t_ready is None and time.monotonic() < deadline and w2.alive() and lg.alive():
            ok = healthz(admin2)
            if ok is not None and t_admin is None:
                t_admin = time.time()
            if ok:
                t_ready = time.time()
            time.sleep(0.02)  # polling interval, not synchronisation
        r["worker_listening_s"] = round(t_admin - t_restart, 3) if t_admin else None
        r["worker_kafka_ready_s"] = round(t_ready - t_restart, 3) if t_ready else None
        res = finish_loadgen(h, lg, duration + a.restart_drain + 300)
        r.update(resume_metrics(admin2))
        r["worker2_alive"] = w2.alive()
        r["apache_alive"] = apache.alive()
        clients = [c for c in read_clients(h) if c["counted"]]
    r.update(counts(res))
    rs = res["resume"]
    r.update({k: rs.get(k) for k in ("lost_connections", "attempts", "attempt_failures", "attempt_http_status",
                                     "resumes", "recovered", "not_recovered", "replayed", "clients_resumed",
                                     "clients_live", "clients_not_joined_at_end")})
    t0 = int(t_restart * 1e6)
    acked = [(c["ack_us"] - t0) / 1e6 for c in clients if c["resumes"] and c["last_recovered"]]
    live = [(c["first_live_us"] - t0) / 1e6 for c in clients
            if c["resumes"] and c["last_recovered"] and c["first_live_us"]]
    reconnected = [(c["connected_us"] - t0) / 1e6 for c in clients if c["resumes"] and c["connected_us"]]
    r["clients_live_again"] = len(live)
    r["all_live_again"] = len(live) == len(clients) and len(clients) > 0
    for name, v in (("reconnected", reconnected), ("ack", acked), ("live", live)):
        r[f"{name}_p50_s"] = round(pct(v, 0.5), 3) if v else None
        r[f"{name}_max_s"] = round(max(v), 3) if v else None
    r["attempts_503"] = (rs.get("attempt_http_status") or {}).get("503", 0)
    r["attempts_per_client_max"] = max((c["attempts"] for c in clients), default=None)
    reasons = {}
    for c in clients:
        if c["not_recovered"]:
            reasons[c["reason"]] = reasons.get(c["reason"], 0) + 1
    r["not_recovered_reasons"] = reasons
    r["loadgen_cpu_s"] = res.get("loadgen_cpu_total_s")
    return r


def replay_run(a, run, out_root, source):
    """Scenario `replay`, from `source` memory or kafka: one client away while
    --replay-records records (~200 bytes) go to its room, then back: records/s of its replay;
    a second client in the same room got the same records live meanwhile."""
    r = {"scenario": "replay", "source": source, "run": run}
    with rb.run_harness(out_root, f"resume-replay-{source}-{run}") as h:
        broker = h.start_broker(topics=[TOPIC], partitions=a.replay_partitions, timeout=15)
        # client_backlog: the worker queues a whole replay at once and answers recovered: false
        # ("more than client_backlog to replay") to one larger than client_backlog, 4M by
        # default, i.e. about 13 000 of these records. 64M holds the 50 000 (about 15 MB framed).
        extra = {"client_backlog": a.replay_client_backlog}
        if source == "kafka":
            extra["recovery_max_bytes"] = "0"  # no window in memory: every resume reads Kafka
        conf, admin, port = worker_conf(h, "worker", broker.bootstrap, **extra)
        w = spawn_worker(h, a.build_dir, "worker", conf)
        wait_ready(h, w, admin)
        argv = loadgen_argv(a, h, f"replay-{source}-{run}", port, broker.bootstrap, broker.proc.pid, [
            "--connections", 2, "--rooms", 1, "--procs", 1, "--partitions", a.replay_partitions,
            "--drop-clients", 1, "--drop-at", 1, "--backlog-per-room", a.replay_records, "--pad", a.replay_pad,
            "--return-settle", 1, "--after-return", 1, "--settle", 1, "--drain", 120, "--server-pid", w.pid])
        lg = start_loadgen(h, argv)
        res = finish_loadgen(h, lg, 400)
        r.update(resume_metrics(admin))
        r["worker_alive"] = w.alive()
        clients = read_clients(h)
    r.update(counts(res))
    back, watcher = clients[0], clients[1]
    r["recovered"] = bool(back["last_recovered"])
    r["reason"] = back["reason"]
    r["replayed"] = back["replayed"]
    span = (back["last_replayed_us"] - back["join_sent_us"]) / 1e6 if back["last_replayed_us"] else None
    r["replay_s"] = round(span, 3) if span else None
    r["ack_wait_s"] = round((back["ack_us"] - back["join_sent_us"]) / 1e6, 3) if back["ack_us"] else None
    r["replay_records_per_s"] = round(back["replayed"] / span) if span else None
    live_span = (watcher["last_rx_us"] - watcher["first_rx_us"]) / 1e6
    r["live_records"] = watcher["received"]
    r["live_s"] = round(live_span, 3)
    r["live_records_per_s"] = round(watcher["received"] / live_span) if live_span > 0 else None
    r["replay_vs_live"] = (round(r["replay_records_per_s"] / r["live_records_per_s"], 2)
                           if r["replay_records_per_s"] and r["live_records_per_s"] else None)
    r["worker_cpu_s"] = res.get("server_cpu_window_s")
    return r


def storm_run(a, run, out_root):
    """Scenario `resume-storm`: see the module's doc."""
    r = {"scenario": "resume-storm", "run": run}
    with rb.run_harness(out_root, f"resume-storm-{run}") as h:
        broker = h.start_broker(topics=[TOPIC], partitions=a.storm_partitions, timeout=15)
        conf, admin, port = worker_conf(h, "worker", broker.bootstrap, recovery_max_bytes="0")
        w = spawn_worker(h, a.build_dir, "worker", conf)
        wait_ready(h, w, admin)
        n = a.storm_clients + a.storm_resumers
        # Two client processes: the resumers (clients 0..K-1) in one, the steady clients in the
        # other, so that reading the replays does not delay the steady clients' own reading.
        argv = loadgen_argv(a, h, f"storm-{run}", port, broker.bootstrap, broker.proc.pid, [
            "--connections", n, "--rooms", a.storm_rooms, "--procs", 2, "--partitions", a.storm_partitions,
            "--rate", a.storm_rate, "--drop-clients", a.storm_resumers, "--drop-rooms", a.storm_resumer_rooms,
            "--drop-at", a.storm_window, "--backlog-per-room", a.storm_back, "--return-settle", 2,
            "--after-return", a.storm_window, "--settle", 2, "--drain", 60, "--server-pid", w.pid,
            "--backoff-min", a.backoff_min, "--backoff-max", a.backoff_max])
        lg = start_loadgen(h, argv)
        res = finish_loadgen(h, lg, 3 * a.storm_window + 400)
        r.update(resume_metrics(admin))
        r["worker_alive"] = w.alive()
        clients = read_clients(h)
    r.update(counts(res))
    rs = res["resume"]
    phases = {p["phase"]: p for p in res.get("phases", [])}
    before, after = phases.get("before_drop", {}), phases.get("after_return", {})
    for name, p in (("quiet", before), ("storm", after)):
        r[f"{name}_deliveries"] = p.get("deliveries")
        for q in ("p50", "p99", "max"):
            v = p.get(f"lat_{q}_ms")
            r[f"{name}_{q}_ms"] = v if v is not None and v >= 0 else None
    r["p99_ratio"] = (round(r["storm_p99_ms"] / r["quiet_p99_ms"], 2)
                      if r.get("storm_p99_ms") and r.get("quiet_p99_ms") else None)
    ret = rs.get("return_real_us") or 0
    resumers = [c for c in clients if c["idx"] < a.storm_resumers and c["counted"]]
    r["resumers"] = len(resumers)
    r["resumers_recovered"] = sum(1 for c in resumers if c["resumes"] and c["last_recovered"])
    acks = [(c["ack_us"] - ret) / 1e6 for c in resumers if c["ack_us"] and c["resumes"]]
    done = [(c["last_replayed_us"] - ret) / 1e6 for c in resumers if c["last_replayed_us"]]
    r["resumer_replayed"] = sum(c["replayed"] for c in resumers)
    for name, v in (("ack", acks), ("replayed", done)):
        r[f"{name}_p50_s"] = round(pct(v, 0.5), 3) if v else None
        r[f"{name}_max_s"] = round(max(v), 3) if v else None
    r.update({k: rs.get(k) for k in ("resumes", "recovered", "not_recovered", "attempt_failures")})
    r["worker_cpu_s"] = res.get("server_cpu_window_s")
    r["window_s"] = res.get("window_s")
    return r


def run_scenario(a, sc, run, out_root, variant=None):
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = rb.machine_busy_seconds()
    try:
        if sc == "restart":
            r = restart_run(a, run, out_root)
        elif sc == "replay":
            r = replay_run(a, run, out_root, variant)
        else:
            r = storm_run(a, run, out_root)
    except harness.HarnessError as e:  # BenchError too
        r = {"scenario": sc, "run": run, "error": str(e)}
        if variant:
            r["source"] = variant
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)  # every process reaped since
    r["foreign_cpu_cores"] = round(max(0.0, rb.machine_busy_seconds() - busy0 - ours) / wall, 3) if wall else 0
    r["wall_s"] = round(wall, 1)
    return r


# ---------------------------------------------------------------------------- report

def med(results, key, sc, source=None):
    vals = [r.get(key) for r in results if r["scenario"] == sc and "error" not in r
            and (source is None or r.get("source") == source)]
    vals = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(vals) if vals else None


def runs_of(results, key, sc, source=None, fmt=lambda v: str(v)):
    return ", ".join(fmt(r.get(key)) if r.get(key) is not None else "n/a" for r in results
                     if r["scenario"] == sc and "error" not in r and (source is None or r.get("source") == source))


def num(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def s_(v):
    return num(v, 2, " s")


def ms(v):
    return "n/a" if v is None else rb.fmt_ms(v) + " ms"


def build_table(results, a):
    rows = []

    def row(title, metric, key, sc, fmt, source=None):
        rows.append((title, metric, fmt(med(results, key, sc, source)), runs_of(results, key, sc, source, fmt)))

    def errors(sc, source=None):
        n = sum(1 for r in results if r["scenario"] == sc and "error" in r
                and (source is None or r.get("source") == source))
        if n:
            rows.append(("", f"  ({n} run(s) failed, see raw results)", "", ""))

    if "restart" in a.scenarios:
        sc = "restart"
        t = (f"restart: {a.restart_clients:,} clients via Apache handoff, {a.restart_rooms} rooms, "
             f"{a.restart_rate:g} msg/s, kill -9 + new worker")
        row(t, "records expected / received", "expected", sc, num)
        row("", "", "received", sc, num)
        row("", "lost / duplicated / out of order", "lost", sc, num)
        row("", "", "duplicates", sc, num)
        row("", "", "out_of_order", sc, num)
        row("", "resumes recovered / not recovered", "recovered", sc, num)
        row("", "", "not_recovered", sc, num)
        row("", "clients live again (of clients)", "clients_live_again", sc, num)
        row("", "", "clients", sc, num)
        row("", "new worker: admin port up / Kafka assigned", "worker_listening_s", sc, s_)
        row("", "", "worker_kafka_ready_s", sc, s_)
        row("", "reconnected (101) p50 / max", "reconnected_p50_s", sc, s_)
        row("", "", "reconnected_max_s", sc, s_)
        row("", "resume acked (recovered) p50 / max", "ack_p50_s", sc, s_)
        row("", "", "ack_max_s", sc, s_)
        row("", "live again p50 / max (target max <= 10 s)", "live_p50_s", sc, s_)
        row("", "", "live_max_s", sc, s_)
        row("", "reconnection attempts / of them answered 503", "attempts", sc, num)
        row("", "", "attempts_503", sc, num)
        row("", "worker: resumes recovered / records read from Kafka", "worker_resumes_recovered", sc, num)
        row("", "", "worker_replay_kafka_records", sc, num)
        errors(sc)
    if "replay" in a.scenarios:
        for source in ("memory", "kafka"):
            t = f"replay: 1 client, {a.replay_records:,} records back, from {source}"
            row(t, "replay records/s (join sent -> last replayed)", "replay_records_per_s", "replay", num, source)
            row("", "records replayed", "replayed", "replay", num, source)
            row("", "replay time / of it waiting for the ack", "replay_s", "replay", s_, source)
            row("", "", "ack_wait_s", "replay", s_, source)
            row("", "live delivery of the same records (records/s)", "live_records_per_s", "replay", num, source)
            row("", "replay / live", "replay_vs_live", "replay", lambda v: num(v, 2, "x"), source)
            row("", "worker: records replayed / read from Kafka", "worker_replayed_records", "replay", num, source)
            row("", "", "worker_replay_kafka_records", "replay", num, source)
            row("", "lost / duplicated / out of order", "lost", "replay", num, source)
            row("", "", "duplicates", "replay", num, source)
            row("", "", "out_of_order", "replay", num, source)
            errors("replay", source)
    if "resume-storm" in a.scenarios:
        sc = "resume-storm"
        t = (f"resume-storm: {a.storm_clients:,} clients, {a.storm_rooms} rooms, {a.storm_rate:g} msg/s; "
             f"{a.storm_resumers:,} resume {a.storm_back:,} records back from Kafka")
        row(t, f"latency p50 / p99 without resumes ({a.storm_window:g} s)", "quiet_p50_ms", sc, ms)
        row("", "", "quiet_p99_ms", sc, ms)
        row("", f"latency p50 / p99 with the storm ({a.storm_window:g} s)", "storm_p50_ms", sc, ms)
        row("", "", "storm_p99_ms", sc, ms)
        row("", "p99 with / without", "p99_ratio", sc, lambda v: num(v, 2, "x"))
        row("", "resumers recovered (of resumers)", "resumers_recovered", sc, num)
        row("", "", "resumers", sc, num)
        row("", "resume acked p50 / max (after the return)", "ack_p50_s", sc, s_)
        row("", "", "ack_max_s", sc, s_)
        row("", "replay received p50 / max", "replayed_p50_s", sc, s_)
        row("", "", "replayed_max_s", sc, s_)
        row("", "records replayed / read from Kafka (worker)", "resumer_replayed", sc, num)
        row("", "", "worker_replay_kafka_records", sc, num)
        row("", "worker CPU over the whole production (s)", "worker_cpu_s", sc, lambda v: num(v, 1))
        row("", "lost / duplicated / out of order", "lost", sc, num)
        row("", "", "duplicates", sc, num)
        row("", "", "out_of_order", sc, num)
        errors(sc)
    return rows


def print_table(rows, a):
    """Prints the rows: a scenario's title, then its metrics, the median and (several runs) each
    run's value. A row with no title and no metric continues the one before ("a / b")."""
    merged = []
    for r in rows:
        if merged and not r[0] and not r[1] and r[2]:
            p = merged[-1]
            merged[-1] = (p[0], p[1], f"{p[2]} / {r[2]}", f"{p[3]} / {r[3]}")
        else:
            merged.append(r)
    print(f"\nmedians of {a.runs} run(s)" + ("; each run's value in brackets" if a.runs > 1 else ""))
    for title, metric, value, runs in merged:
        if title:
            print(f"\n{title}")
        print(f"  {metric:52} {value:24} {'[' + runs + ']' if a.runs > 1 and runs else ''}".rstrip())


def checks(results, a):
    out = []
    if "restart" in a.scenarios:
        rs = [r for r in results if r["scenario"] == "restart"]
        ok = rs and all("error" not in r and r.get("lost") == 0 and r.get("duplicates") == 0
                        and r.get("out_of_order") == 0 for r in rs)
        out.append(("restart: nothing lost, nothing twice, in order", ok,
                    "; ".join(f"run {r['run']}: " + (r["error"].splitlines()[0] if "error" in r else
                              f"{r.get('lost')} lost, {r.get('duplicates')} dup, {r.get('out_of_order')} ooo")
                              for r in rs)))
        ok = rs and all("error" not in r and r.get("all_live_again") and r.get("live_max_s") is not None
                        and r["live_max_s"] <= 10 for r in rs)
        out.append(("restart: every client live again within 10 s of the restart", ok,
                    "; ".join(f"run {r['run']}: " + ("failed" if "error" in r else
                              f"{r.get('clients_live_again')}/{r.get('clients')} live, max {s_(r.get('live_max_s'))}")
                              for r in rs)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(rb.REPO, "build"))
    ap.add_argument("--out", default=None, help="results and logs (default BUILD/bench)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each scenario (median reported)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--backoff-min", type=float, default=0.5, help="a lost client waits a random delay in "
                    "[min, max] seconds before it reconnects, again after each failed attempt")
    ap.add_argument("--backoff-max", type=float, default=2)
    g = ap.add_argument_group("restart")
    g.add_argument("--restart-clients", type=int, default=10000)
    g.add_argument("--restart-rooms", type=int, default=100)
    g.add_argument("--restart-rate", type=float, default=100, help="records/s over the rooms")
    g.add_argument("--restart-procs", type=int, default=2, help="client processes")
    g.add_argument("--restart-partitions", type=int, default=1)
    g.add_argument("--restart-steady", type=float, default=5, help="seconds of production before the kill")
    g.add_argument("--restart-after", type=float, default=25, help="seconds of production after the restart")
    g.add_argument("--restart-drain", type=float, default=20, help="seconds to wait for late records")
    g = ap.add_argument_group("replay")
    g.add_argument("--replay-records", type=int, default=50000)
    g.add_argument("--replay-pad", type=int, default=128, help="padding per record (128: ~200 bytes a record)")
    g.add_argument("--replay-partitions", type=int, default=4,
                   help="the mock broker keeps 5 MB per partition: 50 000 records of ~200 bytes need 3 or more")
    g.add_argument("--replay-client-backlog", default="64M")
    g = ap.add_argument_group("resume-storm")
    g.add_argument("--storm-clients", type=int, default=1000, help="clients that stay, whose latency is measured")
    g.add_argument("--storm-rooms", type=int, default=10)
    g.add_argument("--storm-rate", type=float, default=20, help="records/s over their rooms")
    g.add_argument("--storm-resumers", type=int, default=1000)
    g.add_argument("--storm-resumer-rooms", type=int, default=10)
    g.add_argument("--storm-back", type=int, default=2000, help="records each resumer's room gets while away")
    g.add_argument("--storm-partitions", type=int, default=2)
    g.add_argument("--storm-window", type=float, default=10, help="seconds of each latency window")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.scenarios = rb.choices(ap, a.scenarios, SCENARIOS, "scenario")
    for b in ("psdm_loadgen", "psdm_kafka_dev", "psdm_socketd") + (("mod_psdm_socket.so",)
                                                                     if "restart" in a.scenarios else ()):
        if not os.path.exists(os.path.join(a.build_dir, b)):
            ap.error(f"{a.build_dir}/{b} missing: build first (make build)")
    if "restart" in a.scenarios and not os.path.exists(rb.APACHE2):
        ap.error(f"{rb.APACHE2} missing: scripts/deps.sh bench")
    out_root, stamp = rb.start_run(a)

    plan = []
    for run in range(1, a.runs + 1):
        for sc in a.scenarios:
            if sc == "replay":
                plan += [(sc, run, "memory"), (sc, run, "kafka")]
            else:
                plan.append((sc, run, None))
    print(f"resume bench: {len(plan)} scenario runs; logs and raw results in {out_root}", flush=True)
    results, t_start = [], time.monotonic()
    try:
        for i, (sc, run, variant) in enumerate(plan, 1):
            r = run_scenario(a, sc, run, out_root, variant)
            results.append(r)
            print(f"[{i}/{len(plan)} {time.monotonic() - t_start:5.0f} s] {sc}{'-' + variant if variant else ''} "
                  f"run {run}: {summary(r)} ({r['wall_s']} s)"
                  + (f"  [other load: {r['foreign_cpu_cores']:.2f} cores]" if r["foreign_cpu_cores"] > 0.1 else ""),
                  flush=True)
    except KeyboardInterrupt:
        print("\nresume bench: interrupted; stopping everything it started", file=sys.stderr)
        rb.stop_all()
        write_raw(results, out_root, stamp)
        return 130
    finally:
        rb.stop_all()
    paths = write_raw(results, out_root, stamp)
    print_table(build_table(results, a), a)
    cs = checks(results, a)
    if cs:
        print("\nresume targets")
        for name, ok, detail in cs:
            print(f"  {'ok' if ok else 'MISSED':6}  {name}: {detail}")
    print(f"\nraw results: {paths[1]}; logs: {os.path.join(out_root, 'logs')}")
    print(f"resume bench: done in {time.monotonic() - t_start:.0f} s")
    return 1 if any("error" in r for r in results) else 0


def summary(r):
    if "error" in r:
        return "FAILED: " + r["error"].splitlines()[0]
    loss = f"{r.get('lost')} lost, {r.get('duplicates')} dup, {r.get('out_of_order')} ooo"
    if r["scenario"] == "restart":
        return (f"{loss}; {r.get('recovered')} recovered, {r.get('not_recovered')} not; "
                f"{r.get('clients_live_again')}/{r.get('clients')} live again, p50 {s_(r.get('live_p50_s'))}, "
                f"max {s_(r.get('live_max_s'))} after the restart (Kafka assigned at "
                f"{s_(r.get('worker_kafka_ready_s'))})")
    if r["scenario"] == "replay":
        return (f"{'recovered' if r.get('recovered') else 'NOT recovered: ' + str(r.get('reason'))}, "
                f"{num(r.get('replayed'))} replayed at {num(r.get('replay_records_per_s'))}/s "
                f"(live {num(r.get('live_records_per_s'))}/s); {loss}")
    return (f"p99 {ms(r.get('quiet_p99_ms'))} -> {ms(r.get('storm_p99_ms'))} ({num(r.get('p99_ratio'), 2, 'x')}); "
            f"{r.get('resumers_recovered')}/{r.get('resumers')} recovered, replays done by "
            f"{s_(r.get('replayed_max_s'))}; {loss}")


def write_raw(results, out_root, stamp):
    paths = []
    for name in (f"resume-{stamp}", "resume-latest"):
        p = os.path.join(out_root, name + ".json")
        with open(p, "w") as f:
            json.dump(results, f, indent=1)
        paths.append(p)
    return paths


if __name__ == "__main__":
    sys.exit(main())
