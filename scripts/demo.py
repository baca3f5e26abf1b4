#!/usr/bin/python3
"""make demo: the whole stack on embedded defaults, until Ctrl-C.

Starts, on loopback, the Kafka-protocol broker, psdm_socketd behind its handoff
socket, a private Apache on http://127.0.0.1:8080/ with mod_psdm_socket loaded and a
demo identity set as WebAuth would (WEBAUTH_USER=demo), and a sample producer that
publishes elog-like messages for two experiments and an `experiments` message now
and then. Prints the URL of the demo page and how to publish your own message.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args()
    if args.build_dir:
        os.environ["PSDM_BUILD_DIR"] = args.build_dir
    import harness  # after PSDM_BUILD_DIR is set
    import stack

    log_root = tempfile.mkdtemp(prefix="psdm-demo-")
    h = harness.Harness("demo", log_root=log_root)
    stop = threading.Event()
    try:
        try:
            if harness.port_open(args.port):
                raise harness.HarnessError(f"port {args.port} is in use; try: make demo DEMO_PORT=8081")
            acl = stack.demo_acl(h)
            broker, worker, httpd, _ = stack.start(h, port=args.port, authz=acl)
        except harness.HarnessError as e:
            print(f"demo: {e}", file=sys.stderr)
            h.close(failed=True)
            return 1
        threading.Thread(target=sample_producer, args=(broker, stop), daemon=True).start()
        print(f"""
psdm-socket demo is running (logs in {h.run_dir})

  Open  {httpd.url}/demo/
        live messages for an experiment and for the global room, as user 'demo'
        (who may read xpptut15 and mfxc00118, but not secret_exp)

  Publish your own message:
    echo '{{"experiment_name":"xpptut15","content":"hello"}}' | kcat -P -b {broker.bootstrap} -t elog

Ctrl-C stops everything.""", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        print("demo: stopping", flush=True)
        return 0
    finally:
        stop.set()
        try:
            h.close(failed=False)
        except harness.HarnessError as e:
            print(f"demo: {e}", file=sys.stderr)
        shutil.rmtree(log_root, ignore_errors=True)


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
