#!/usr/bin/python3
"""make demo: runs the stack on embedded defaults until Ctrl-C.

Today it starts what exists: the Kafka-protocol broker and a private Apache with
mod_psdm_socket loaded on http://127.0.0.1:8080/. The worker, the demo page and
the sample producer come with later issues; the demo says so instead of pretending.
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args()
    if args.build_dir:
        os.environ["PSDM_BUILD_DIR"] = args.build_dir
    import harness  # after PSDM_BUILD_DIR is set

    log_root = tempfile.mkdtemp(prefix="psdm-demo-")
    h = harness.Harness("demo", log_root=log_root)
    try:
        broker = h.start_broker(topics=["elog", "experiments"])
        httpd = h.start_httpd('<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n</LocationMatch>\n',
                              port=args.port)
    except harness.HarnessError as e:
        print(f"demo: {e}", file=sys.stderr)
        h.close(failed=True)
        return 1
    print(f"""
psdm-socket demo (partial)
  Apache with mod_psdm_socket : {httpd.url}/   (logs in {h.run_dir})
  Kafka-protocol broker       : {broker.bootstrap}
    publish:  echo '{{"experiment_name":"xpptut15","msg":"hello"}}' | kcat -P -b {broker.bootstrap} -t elog

Not there yet: the psdm_socketd worker, the handoff from Apache to it, the demo page
and the sample producer. Until they land, no page shows live messages.
Ctrl-C stops everything.""", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    h.close(failed=False)
    shutil.rmtree(log_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
