#!/usr/bin/python3
"""`make bench`, third part: the yardsticks of issue 13. The worker's deliveries per
CPU-second against the send floor (bench/sendfloor.cpp: one send() per delivery and
nothing else, and the same through io_uring) and against the Node peer (bench/peer/server.js:
the npm socket.io server fed by kafkajs), plus the issue's latency, handshake and join
targets.

    /usr/bin/python3 bench/yardsticks.py --build-dir build [--runs 3] [--scenarios ...]

Scenarios (bench/README.md, "Yardsticks"):

  room-1000, room-5000, room-10000
             N clients in one room, --room-rate (10) msg/s for --duration (6) s: worker
             (fanout_sends = io_uring, the default), the worker with fanout_sends = send
             (target psdm_socketd-send), peer and send floor (same N, rate, frame size)
  rooms      1 000 rooms x 10, 2 000 msg/s: worker, peer and send floor (10 sends per message)
  two-workers  10 000 clients in one room at 10 msg/s, half on each of two workers that
             consume the same broker: all delivered, p99 (target <= 50 ms)
  light      1 000 clients in one room at 5 msg/s: p99 (target <= 10 ms)
  light-2w   the same on two workers (half the clients on each), as README's sizing advises
  joins      19 900 clients (the open-files limit of 20 000 allows no more on one worker)
             open the namespace, then all join one room at once: the worker's CPU for the
             joins (target: 20 000 in < 50 ms), the peer's for comparison
  handshake  handoff / direct handshakes per second (target >= 0.5), from run_bench.py's
             saved results (--handshake-results) when they have the scenario, else run here

Every worker or peer run gets a fresh broker (build/psdm_kafka_dev) and a fresh server,
started, probed and stopped with the integration tests' harness as in run_bench.py, and
build/psdm_loadgen as clients. Runs are interleaved (run 1 of every scenario and target,
then run 2, ...); the tables show medians of --runs. Raw results of every run:
build/bench/yardsticks-latest.json (and a time-stamped copy); logs: build/bench/logs/yard-*.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402 - process handling, broker, CPU readings, handshake scenario
import resume_bench as rs  # noqa: E402 - the worker's /healthz probe, loadgen start and result
from run_bench import harness  # noqa: E402 - tests/integration/harness.py, on the path run_bench set

NODE = "/usr/bin/node"
PEER = os.path.join(HERE, "peer", "server.js")
TOPIC = "elog"
ROOM_SIZES = (1000, 5000, 10000)
SCENARIOS = tuple(f"room-{n}" for n in ROOM_SIZES) + ("rooms", "two-workers", "light", "light-2w", "joins",
                                                     "handshake")
RATIO_SCENARIOS = tuple(f"room-{n}" for n in ROOM_SIZES) + ("rooms",)
TARGETS = ("psdm_socketd", "peer", "floor", "psdm_socketd-send")
W, P, F, WS = TARGETS  # WS: the worker with fanout_sends = send (a send() per delivery)
TWO_WORKER_SCENARIOS = ("two-workers", "light-2w")


# ---------------------------------------------------------------------------- servers

def start_worker(h, a, bootstrap, name="worker", sends="io_uring"):
    """psdm_socketd as run_bench.py runs it (direct listen, earliest, allow-all, warn), plus
    admin_listen for its /healthz and fanout_sends = `sends`; returns the process and its port
    once Kafka is assigned."""
    port, admin = harness.free_port(), harness.free_port()
    conf = os.path.join(h.run_dir, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\nadmin_listen = 127.0.0.1:{admin}\n"
                f"kafka.bootstrap.servers = {bootstrap}\nkafka.auto.offset.reset = earliest\n"
                # The mock broker holds every fetch that finds nothing new for the whole
                # fetch.wait.max.ms (a real broker answers when data arrives): keep it short so
                # that latencies show the worker, not the mock. The peer gets the same wait.
                f"kafka.fetch.wait.max.ms = {a.fetch_wait_ms}\n"
                f"topics = {TOPIC}\nauthz = allow-all\nfanout_sends = {sends}\n"
                "log_level = warn\n")  # not info: a line per connection would cost CPU
    p = h.spawn(name, [os.path.join(a.build_dir, "psdm_socketd"), "-c", conf])
    rs.wait_ready(h, p, admin)
    return p, port


def start_peer(h, a, bootstrap, name="peer"):
    """The Node peer (bench/peer/server.js) with the same topic, path and fetch wait; returns
    the process and its port once its consumer group has its partitions."""
    port = harness.free_port()
    argv = [NODE, PEER, "--port", str(port), "--bootstrap", bootstrap, "--topics", TOPIC,
            "--path", "/" + rb.SOCKETIO_PATH + "/", "--fetch-wait-ms", str(a.fetch_wait_ms),
            "--offset-reset", "earliest"]
    p = h.spawn(name, argv)
    h.wait_for(p, lambda: rs.log_has(p, "partition(s) assigned") and harness.port_open(port),
               "listening and Kafka partitions assigned", 30)
    return p, port


# ---------------------------------------------------------------------------- scenarios

def load(a, scenario):
    """(clients, rooms, rate, duration, extra loadgen args) of a loadgen scenario."""
    if scenario.startswith("room-"):
        return int(scenario[5:]), 1, a.room_rate, a.duration, []
    if scenario == "rooms":
        return 10 * a.rooms_count, a.rooms_count, a.rooms_rate, a.duration, []
    if scenario == "two-workers":
        return a.two_workers_clients, 1, a.two_workers_rate, a.duration, []
    if scenario in ("light", "light-2w"):
        return a.light_clients, 1, a.light_rate, a.light_duration, []
    if scenario == "joins":
        return a.join_clients, 1, 0, 0, ["--join-burst", "--procs", 2, "--ramp-timeout", 90]
    raise ValueError(scenario)


def measure(h, a, label, ports, pids, broker, scenario):
    """Runs psdm_loadgen against the server(s) on `ports`; returns its result plus the CPU
    used outside the bench's processes (foreign_cpu_cores)."""
    n, rooms, rate, duration, extra = load(a, scenario)
    argv = [os.path.join(a.build_dir, "psdm_loadgen"), "--port", ports[0], "--path", "/" + rb.SOCKETIO_PATH + "/",
            "--bootstrap", broker.bootstrap, "--topic", TOPIC, "--label", label, "--broker-pid", broker.proc.pid,
            "--connections", n, "--rooms", rooms, "--settle", 1, "--drain", a.drain]
    if rate:
        argv += ["--rate", rate, "--duration", duration]
    for p in ports[1:]:
        argv += ["--extra-port", p]
    for pid in pids:
        argv += ["--server-pid", pid]
    argv = [str(x) for x in argv + extra]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, ours0, w0 = rb.machine_busy_seconds(), rb.cpu_seconds(pids + [broker.proc.pid]), time.monotonic()
    lg = rs.start_loadgen(h, argv)
    try:
        res = rs.finish_loadgen(h, lg, a.scenario_timeout)
    finally:
        rb.stop(lg)
    wall = time.monotonic() - w0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator and its client processes
    ours = (rb.cpu_seconds(pids + [broker.proc.pid]) - ours0 + ru1.ru_utime + ru1.ru_stime
            - ru0.ru_utime - ru0.ru_stime)
    res["foreign_cpu_cores"] = round(max(0.0, rb.machine_busy_seconds() - busy0 - ours) / wall, 3)
    return res


def server_run(a, out_root, scenario, target, run):
    """One run of a loadgen scenario on the worker (two for two-workers) or the peer."""
    r = {"scenario": scenario, "target": target, "run": run}
    t0 = time.monotonic()
    with rb.run_harness(out_root, f"yard-{scenario}-{target}-{run}") as h:
        try:
            broker = h.start_broker(topics=[TOPIC], partitions=1, timeout=15)
            if target == P:
                procs = [start_peer(h, a, broker.bootstrap)]
            else:
                procs = [start_worker(h, a, broker.bootstrap, f"worker{i + 1}", "send" if target == WS else "io_uring")
                         for i in range(2 if scenario in TWO_WORKER_SCENARIOS else 1)]
            pids = [p.pid for p, _ in procs]
            r.update(measure(h, a, f"{scenario}-{target}-{run}", [port for _, port in procs], pids, broker, scenario))
            for p, _ in procs:
                if not p.alive():
                    r["error"] = f"{p.name} exited ({p.popen.returncode}):\n{rb.tail(p.log)}"
        except harness.HarnessError as e:
            r["error"] = str(e)
    r["wall_s"] = round(time.monotonic() - t0, 1)
    # The server's CPU from the start of production to the end of the drain, in nanoseconds
    # (schedstat) rather than clock ticks: 1 000 clients at 10 msg/s take a fraction of a second.
    cpu = r.get("server_cpu_window_precise_s") or r.get("server_cpu_window_s")
    if "error" not in r and cpu and r.get("delivered"):
        r["deliveries_per_cpu_s"] = r["delivered"] / cpu
        if r.get("server_main_thread_cpu_window_s"):  # the event loop's share (the rest: Kafka's threads)
            r["main_thread_share"] = r["server_main_thread_cpu_window_s"] / cpu
    return r


def floor_run(a, out_root, scenario, run):
    """psdm_sendfloor with the scenario's connections, rooms, rate and duration: one result
    per mode (send, uring)."""
    n, rooms, rate, duration, _ = load(a, scenario)
    d = os.path.join(out_root, "logs", f"yard-{scenario}-floor-{run}")
    os.makedirs(d, exist_ok=True)
    argv = [str(x) for x in [os.path.join(a.build_dir, "psdm_sendfloor"), "--connections", n, "--rooms", rooms,
                             "--rate", rate, "--duration", duration, "--frame-bytes", a.frame_bytes,
                             "--batch", a.uring_batch, "--label", f"{scenario}-floor-{run}"]]
    with open(os.path.join(d, "sendfloor.cmd"), "w") as f:
        f.write(" ".join(argv) + "\n")
    t0 = time.monotonic()
    busy0 = rb.machine_busy_seconds()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=duration * 2 + 120, start_new_session=True)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", (e.stderr or "") + "\ntimed out", -1
    wall = time.monotonic() - t0
    with open(os.path.join(d, "sendfloor.json"), "w") as f:
        f.write(out if isinstance(out, str) else out.decode())
    with open(os.path.join(d, "sendfloor.log"), "w") as f:
        f.write(err if isinstance(err, str) else err.decode())
    results = []
    for line in (out if isinstance(out, str) else out.decode()).splitlines():
        if line.startswith("{"):
            res = json.loads(line)
            mode = res.get("mode", "send")
            res.update({"scenario": scenario, "target": "floor-" + mode, "run": run, "wall_s": round(wall, 1)})
            if mode == "uring" and "error" in res:  # io_uring refused or not built: reported, not a failed run
                res["unavailable"] = res.pop("error")
            results.append(res)
    if not results:
        results.append({"scenario": scenario, "target": "floor-send", "run": run,
                        "error": f"psdm_sendfloor exited {rc} without a result: {err[-500:]}"})
    # CPU outside the bench: the machine's busy time minus the floor's (sender and sink)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    for r in results:
        r["foreign_cpu_cores"] = round(max(0.0, rb.machine_busy_seconds() - busy0 - ours) / wall, 3)
    return results


def handshake_results(a, out_root, report):
    """The handshake scenario's results: from run_bench.py's saved raw results when they hold
    it, else measured here with run_bench.handshake_runs."""
    if a.handshake_results and os.path.exists(a.handshake_results):
        with open(a.handshake_results) as f:
            saved = [r for r in json.load(f) if r.get("scenario") == "handshake"]
        if saved:
            print(f"handshake: from {a.handshake_results} (run_bench.py's run)", flush=True)
            return saved, a.handshake_results
    for path, why in ((os.path.join(a.build_dir, "psdm_wsbench"), "needs libssl-dev"),
                      (os.path.join(a.build_dir, "mod_psdm_socket.so"), "make build"), (rb.APACHE2, "apache2")):
        if not os.path.exists(path):
            return [{"scenario": "handshake", "target": "direct", "run": 0, "error": f"{path} missing ({why})"}], None
    ns = types.SimpleNamespace(build_dir=a.build_dir, apache_runs=a.runs, handshake_duration=5,
                               handshake_concurrency=32)
    return rb.handshake_runs(ns, out_root, report), "measured here"


# ---------------------------------------------------------------------------- report

def med(results, scenario, target, key):
    return rb.median([r.get(key) for r in results
                      if r["scenario"] == scenario and r["target"] == target and "error" not in r])


def runs_of(results, scenario, target, key, fmt="{:,.0f}"):
    vals = [r.get(key) for r in results if r["scenario"] == scenario and r["target"] == target and "error" not in r]
    return ", ".join(fmt.format(v) for v in vals if v is not None)


def fmt(v, f="{:,.0f}"):
    return "n/a" if v is None else f.format(v)


def ratio_of(num, den):
    return "n/a" if not num or not den else f"{num / den:.2f}x"


def title(a, scenario):
    n, rooms, rate, duration, _ = load(a, scenario)
    if scenario == "rooms":
        return f"{rooms:,} rooms x 10, {rate:g} msg/s"
    return f"one room x {n:,}, {rate:g} msg/s"


def print_table(hdr, rows):
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    for r in [hdr] + rows:
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def report(results, a, hs_source):
    checks = []

    def check(name, ok, detail, measured=True):
        checks.append(("ok" if ok else "MISSED" if measured else "n/a", name, detail))

    ratio_sc = [s for s in a.scenarios if s in RATIO_SCENARIOS]
    if ratio_sc:
        print(f"\nDeliveries per CPU-second (medians of {a.runs} run(s); the floor: sends per CPU-second of "
              f"psdm_sendfloor, {a.frame_bytes}-byte frames)")
        rows = []
        for sc in ratio_sc:
            wv, pv = med(results, sc, W, "deliveries_per_cpu_s"), med(results, sc, P, "deliveries_per_cpu_s")
            wsv = med(results, sc, WS, "deliveries_per_cpu_s")
            fs, fu = med(results, sc, "floor-send", "sends_per_cpu_s"), med(results, sc, "floor-uring", "sends_per_cpu_s")
            rows.append((title(a, sc), fmt(wv), fmt(wsv), fmt(fs), fmt(fu), fmt(pv), ratio_of(wv, fs), ratio_of(wsv, fs),
                         ratio_of(wv, fu), ratio_of(wv, pv),
                         fmt(med(results, sc, W, "main_thread_share") and 100 * med(results, sc, W, "main_thread_share"),
                             "{:.0f} %"),
                         f"{fmt(med(results, sc, W, 'lat_p99_ms'), '{:.1f}')} / "
                         f"{fmt(med(results, sc, P, 'lat_p99_ms'), '{:.1f}')}",
                         f"{fmt(med(results, sc, W, 'delivered_pct'), '{:.2f}')} / "
                         f"{fmt(med(results, sc, P, 'delivered_pct'), '{:.2f}')}"))
            if sc in ("room-5000", "room-10000"):
                check(f"{title(a, sc)}: worker >= 1.0x the send() floor", wv and fs and wv >= fs, ratio_of(wv, fs),
                      bool(wv and fs))
            check(f"{title(a, sc)}: worker >= 2.5x the Node peer", wv and pv and wv >= 2.5 * pv, ratio_of(wv, pv),
                  bool(wv and pv))
        print_table(("scenario", "worker", "worker, send()", "send() floor", "io_uring floor", "Node peer",
                     "vs send()", "worker, send() vs send()", "vs io_uring", "vs peer", "worker's loop thread", "p99 ms worker / peer",
                     "delivered % worker / peer"), rows)
        missing = {r["unavailable"] for r in results if "unavailable" in r}
        for why in missing:
            print(f"io_uring floor not measured: {why}")
        print("per run (worker; worker, send(); peer; send() floor):")
        for sc in ratio_sc:
            print(f"  {title(a, sc)}: {runs_of(results, sc, W, 'deliveries_per_cpu_s')}; "
                  f"{runs_of(results, sc, WS, 'deliveries_per_cpu_s')}; "
                  f"{runs_of(results, sc, P, 'deliveries_per_cpu_s')}; "
                  f"{runs_of(results, sc, 'floor-send', 'sends_per_cpu_s')}")
    extra = []
    if "two-workers" in a.scenarios:
        sc = "two-workers"
        p99, pct = med(results, sc, W, "lat_p99_ms"), med(results, sc, W, "delivered_pct")
        extra.append((f"{a.two_workers_clients:,} clients, one room, {a.two_workers_rate:g} msg/s, 2 workers",
                      f"delivered {fmt(pct, '{:.2f}')} %, p50 / p99 {fmt(med(results, sc, W, 'lat_p50_ms'), '{:.1f}')} / "
                      f"{fmt(p99, '{:.1f}')} ms (runs: {runs_of(results, sc, W, 'lat_p99_ms', '{:.1f}')}), "
                      f"{fmt(med(results, sc, W, 'deliveries_per_cpu_s'))} deliveries per CPU-second"))
        check(f"{a.two_workers_clients:,} in one room at {a.two_workers_rate:g} msg/s on 2 workers: all delivered, "
              "p99 <= 50 ms",
              pct == 100.0 and p99 is not None and p99 <= 50, f"{fmt(pct, '{:.2f}')} %, p99 {fmt(p99, '{:.1f}')} ms",
              pct is not None)
    for sc, workers in (("light", ""), ("light-2w", ", 2 workers")):
        if sc not in a.scenarios:
            continue
        p99 = med(results, sc, W, "lat_p99_ms")
        extra.append((f"light: {a.light_clients:,} clients, one room, {a.light_rate:g} msg/s{workers}",
                      f"p50 / p99 {fmt(med(results, sc, W, 'lat_p50_ms'), '{:.1f}')} / {fmt(p99, '{:.1f}')} ms "
                      f"(runs: {runs_of(results, sc, W, 'lat_p99_ms', '{:.1f}')}), delivered "
                      f"{fmt(med(results, sc, W, 'delivered_pct'), '{:.2f}')} %"))
        check(f"light load p99 <= 10 ms{workers}", p99 is not None and p99 <= 10, f"{fmt(p99, '{:.1f}')} ms",
              p99 is not None)
    if "joins" in a.scenarios:
        for t in (W, P):
            cpu = med(results, "joins", t, "server_cpu_joins_s")
            n = med(results, "joins", t, "joins_acked")
            if cpu is None and t == P:
                continue
            per = cpu / n * 1e6 if cpu and n else None
            extra.append((f"joins: {fmt(n)} into one room at once, {'worker' if t == W else 'Node peer'}",
                          f"{fmt(cpu and cpu * 1e3, '{:.1f}')} ms of CPU ({fmt(per, '{:.2f}')} us per join, "
                          f"{fmt(per and per * 20000 / 1e3, '{:.0f}')} ms for 20 000; main thread "
                          f"{fmt(med(results, 'joins', t, 'server_main_thread_cpu_joins_s'), '{:.4f}')} s; runs: "
                          f"{runs_of(results, 'joins', t, 'server_cpu_joins_s', '{:.4f}')} s), all acked in "
                          f"{fmt(med(results, 'joins', t, 'join_burst_s'), '{:.3f}')} s"))
            if t == W:
                check("20 000 joins into one room in < 50 ms of worker CPU", per is not None and per * 20000 < 50000,
                      f"{fmt(per and per * 20000 / 1e3, '{:.0f}')} ms (scaled from {fmt(n)})", per is not None)
    if "handshake" in a.scenarios:
        d, hv = med(results, "handshake", "direct", "handshakes_per_s"), med(results, "handshake", "handoff",
                                                                             "handshakes_per_s")
        extra.append(("handshakes: handoff / direct", f"{ratio_of(hv, d)} ({fmt(hv)} vs {fmt(d)} handshakes/s; {hs_source})"))
        check("handoff handshakes >= 0.5x direct", hv and d and hv >= 0.5 * d, ratio_of(hv, d), bool(hv and d))
    if extra:
        print("\nOther targets of issue 13 (medians)")
        print_table(("scenario", "measured"), extra)
    if checks:
        print("\nIssue 13 targets")
        for status, name, detail in checks:
            print(f"  {status:6}  {name}: {detail}")


def run_summary(r):
    if "error" in r:
        return "FAILED: " + r["error"].splitlines()[0]
    if "unavailable" in r:
        return "not measured: " + r["unavailable"]
    if r["target"].startswith("floor"):
        return (f"{r['sends']:,} sends, {r['cpu_s']:.3f} s CPU, {r['sends_per_cpu_s']:,.0f} sends per CPU-second"
                f"{'' if r['sink_bytes'] == r['expected_bytes'] else ', NOT ALL RECEIVED'}")
    if r["target"] in ("direct", "handoff", "proxypass"):
        return f"{r.get('handshakes_per_s', 0):,.0f} handshakes/s"
    if r["scenario"] == "joins":
        return (f"{r.get('joins_acked')}/{r.get('joins_sent')} joins acked in {r.get('join_burst_s')} s, "
                f"server CPU {r.get('server_cpu_joins_s')} s")
    return (f"held {r.get('held_after_ramp')}, {r.get('delivered_pct', 0):.2f}% delivered, "
            f"p50/p99 {r.get('lat_p50_ms', 0):.1f}/{r.get('lat_p99_ms', 0):.1f} ms, "
            f"{r.get('deliveries_per_cpu_s') or 0:,.0f} deliveries per CPU-second")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(rb.REPO, "build"))
    ap.add_argument("--out", default=None, help="results and logs (default BUILD/bench)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each scenario and target (median reported)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--targets", default=",".join(TARGETS), help="of the ratio scenarios (and joins: worker, peer)")
    ap.add_argument("--room-rate", type=float, default=10, help="msg/s of the one-room scenarios")
    ap.add_argument("--rooms-count", type=int, default=1000, help="rooms of 10 in scenario rooms")
    ap.add_argument("--rooms-rate", type=float, default=2000, help="msg/s of scenario rooms")
    ap.add_argument("--duration", type=float, default=6, help="seconds of production")
    ap.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    ap.add_argument("--two-workers-clients", type=int, default=10000)
    ap.add_argument("--two-workers-rate", type=float, default=10)
    ap.add_argument("--light-clients", type=int, default=1000)
    ap.add_argument("--light-rate", type=float, default=5)
    ap.add_argument("--light-duration", type=float, default=10)
    ap.add_argument("--join-clients", type=int, default=19900,
                    help="clients that join one room at once (the worker holds 19 936 at most here)")
    ap.add_argument("--fetch-wait-ms", type=int, default=5,
                    help="the worker's kafka.fetch.wait.max.ms and the peer's maxWaitTimeInMs (the mock broker "
                         "holds every empty fetch that long)")
    ap.add_argument("--frame-bytes", type=int, default=310,
                    help="the send floor's frame: the worker's psdm_ws_msg frame for psdm_loadgen's records")
    ap.add_argument("--uring-batch", type=int, default=256, help="the io_uring floor's sends per submit")
    ap.add_argument("--handshake-results", metavar="RESULTS.json",
                    help="run_bench.py's raw results: their handshake runs are used instead of measuring again")
    ap.add_argument("--scenario-timeout", type=float, default=240, help="hard bound of one load generator run")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.scenarios = rb.choices(ap, a.scenarios, SCENARIOS, "scenario")
    a.targets = rb.choices(ap, a.targets, TARGETS, "target")
    for b in ("psdm_loadgen", "psdm_kafka_dev", "psdm_socketd", "psdm_sendfloor"):
        if not os.path.exists(os.path.join(a.build_dir, b)):
            ap.error(f"{a.build_dir}/{b} missing: build first (make build)")
    if P in a.targets and not os.path.exists(os.path.join(rb.REPO, "node_modules", "kafkajs")):
        ap.error("node_modules/kafkajs missing: scripts/deps.sh bench (npm packages of package.json)")
    out_root, stamp = rb.start_run(a)

    plan = []
    for run in range(1, a.runs + 1):
        for sc in a.scenarios:
            if sc in RATIO_SCENARIOS:
                plan += [(sc, t, run) for t in TARGETS if t in a.targets]
            elif sc == "joins":
                plan += [(sc, t, run) for t in (W, P) if t in a.targets]
            elif sc in ("two-workers", "light", "light-2w"):
                plan.append((sc, W, run))
    total = len(plan) + sum(1 for _, t, _ in plan if t == F)  # the floor reports two modes
    print(f"yardsticks: {total} runs (+ handshake); load average {os.getloadavg()[0]:.2f}; "
          f"logs and raw results in {out_root}", flush=True)
    results, t_start, done = [], time.monotonic(), [0]

    def report_run(r):
        done[0] += 1
        foreign = r.get("foreign_cpu_cores") or 0
        note = f"  [other load: {foreign:.2f} cores]" if foreign > 0.1 else ""
        print(f"[{done[0]}/{total} {time.monotonic() - t_start:5.0f} s] {r['scenario']:11} {r['target']:12} "
              f"run {r['run']}: {run_summary(r)} ({r.get('wall_s')} s){note}", flush=True)
    hs_source = None
    try:
        for sc, t, run in plan:
            if t == "floor":
                for r in floor_run(a, out_root, sc, run):
                    results.append(r)
                    report_run(r)
            else:
                r = server_run(a, out_root, sc, t, run)
                results.append(r)
                report_run(r)
        if "handshake" in a.scenarios:
            hs, hs_source = handshake_results(a, out_root, report_run)
            results += hs
    except KeyboardInterrupt:
        print("\nyardsticks: interrupted; stopping everything it started", file=sys.stderr)
        rb.stop_all()
        return 130
    finally:
        rb.stop_all()
        for name in (f"yardsticks-{stamp}", "yardsticks-latest"):
            with open(os.path.join(out_root, name + ".json"), "w") as f:
                json.dump(results, f, indent=1)
    report(results, a, hs_source)
    noisy = [r for r in results if (r.get("foreign_cpu_cores") or 0) > 0.1]
    if noisy:
        print(f"\nnote: {len(noisy)} run(s) shared the machine with other load (> 0.1 core outside the bench)")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}; raw results: "
          f"{os.path.join(out_root, 'yardsticks-latest.json')}; yardsticks: done in {time.monotonic() - t_start:.0f} s")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
