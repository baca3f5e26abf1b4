#!/usr/bin/python3
"""make demo: the whole stack on embedded defaults, until Ctrl-C.

Starts, on loopback, the Kafka-protocol broker, psdm_socketd behind its handoff
socket (with its admin listener on), a private Apache on http://127.0.0.1:8080/ with
mod_psdm_socket loaded and a demo identity set as WebAuth would (WEBAUTH_USER=demo),
and a sample producer that publishes elog-like messages for two experiments and an
`experiments` message now and then. `/` redirects to the demo page, which shows the
live messages and the worker's metrics (/metrics and /healthz of the admin listener,
proxied by Apache under /psdm_admin/). Prints the URL of the demo page and how to
publish your own message. start_demo() is what the tests start (test_demo.py).
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

SAMPLE_ROOMS = ["xpptut15", "mfxc00118", "secret_exp"]


def sample_producer(broker, stop):
    """Publishes a logbook entry every 2 s (rotating over the sample experiments) and
    an `experiments` message every 10 s, until stop is set."""
    n = 0
    while not stop.wait(2.0):
        n += 1
        room = SAMPLE_ROOMS[n % len(SAMPLE_ROOMS)]
        entry = {"experiment_name": room, "_id": f"demo-{n}", "content": f"Run {n} started",
                 "author": "demo-daq", "insert_time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            broker.produce("elog", [json.dumps(entry)])
            if n % 5 == 0:
                exp = SAMPLE_ROOMS[(n // 5) % 2]  # the global room hears about the readable ones
                broker.produce("experiments", [json.dumps({"experiment_name": exp, "CRUD": "Update",
                                                           "value": {"name": exp, "run": n}})])
        except Exception as e:  # noqa: BLE001 - a demo producer reports and goes on
            print(f"demo: producing failed: {e}", file=sys.stderr)


class Demo:
    """The running demo stack: .broker, .worker, .httpd (from stack.start_managed), .url of the
    page, .metrics_url of the proxied admin listener; stop() stops the producer (the
    harness stops the processes)."""

    def __init__(self, broker, worker, httpd, stop):
        self.broker, self.worker, self.httpd, self._stop = broker, worker, httpd, stop
        self.url = f"{httpd.url}/"
        self.metrics_url = f"{httpd.url}/psdm_admin/metrics"

    def stop(self):
        self._stop.set()


def start_demo(h, port=None, producer=True):
    """Starts the demo in harness h: Apache on `port` (default a free one), which runs the
    worker itself (PsdmSocketDaemon: LoadModule and one directive), with the demo ACL and
    the worker's admin listener (a free loopback port, proxied by Apache under
    /psdm_admin/), and with producer the sample producer thread. Raises
    harness.HarnessError when a part does not start."""
    import stack  # after PSDM_BUILD_DIR is set
    broker, worker, httpd = stack.start_managed(h, port=port, authz=stack.demo_acl(h), admin=True)
    stop = threading.Event()
    if producer:
        threading.Thread(target=sample_producer, args=(broker, stop), daemon=True).start()
    return Demo(broker, worker, httpd, stop)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args()
    if args.build_dir:
        os.environ["PSDM_BUILD_DIR"] = args.build_dir
    import harness  # after PSDM_BUILD_DIR is set

    log_root = tempfile.mkdtemp(prefix="psdm-demo-")
    os.chmod(log_root, 0o755)  # Apache's children and its worker (Apache's User) read files in it
    h = harness.Harness("demo", log_root=log_root)
    demo = None
    try:
        try:
            if harness.port_open(args.port):
                raise harness.HarnessError(f"port {args.port} is in use; try: make demo DEMO_PORT=8081")
            demo = start_demo(h, port=args.port)
        except (harness.HarnessError, KeyboardInterrupt) as e:
            print(f"demo: {e}", file=sys.stderr)
            h.close(failed=True)
            return 1
        print(f"""
psdm-socket demo is running (logs in {h.run_dir})

  Open  {demo.url}
        live messages for an experiment and for the global room, as user 'demo'
        (who may read xpptut15 and mfxc00118, but not secret_exp), and the worker's
        metrics: {demo.metrics_url}
        (its admin listener, 127.0.0.1:{demo.worker.admin_port}, proxied by Apache, which
        started the worker itself: PsdmSocketDaemon)

  Publish your own message:
    echo '{{"experiment_name":"xpptut15","content":"hello"}}' | kcat -P -b {demo.broker.bootstrap} -t elog

Ctrl-C stops everything.""", flush=True)
        # Ctrl-C (SIGINT) and SIGTERM raise KeyboardInterrupt here. (Not sigwait: the
        # mask it needs would be inherited by every process started, which would then
        # ignore the harness's SIGTERM and wait for its SIGKILL.)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        print("demo: stopping", flush=True)
        return 0
    finally:
        for s in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C does not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        if demo:
            demo.stop()
        try:
            h.close(failed=False)
        except harness.HarnessError as e:
            print(f"demo: {e}", file=sys.stderr)
        shutil.rmtree(log_root, ignore_errors=True)


def _interrupted(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)  # stops what started, as Ctrl-C does
    sys.exit(main())
