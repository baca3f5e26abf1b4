"""The harness itself and the real parts it starts: httpd with our module, the
Kafka-protocol broker with kcat and the worker's librdkafka consumer."""
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from harness import APACHE2, BUILD, REPO, HarnessError


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_httpd_serves_with_module_loaded(harness):
    httpd = harness.start_httpd('<LocationMatch "^/[^/]+_socketio/">\n  SetHandler psdm-socket\n</LocationMatch>\n')
    modules = subprocess.run([APACHE2, "-f", httpd.conf, "-t", "-D", "DUMP_MODULES"],
                             capture_output=True, text=True, check=True).stdout
    assert "psdm_socket_module (shared)" in modules
    # The module answers at its location: a plain GET is not a WebSocket upgrade.
    status, body = http_get(httpd.url + "/lgbk_socketio/socket.io/?EIO=4&transport=websocket")
    assert status == 400
    assert "not a WebSocket upgrade" in body
    # Elsewhere, httpd serves as usual.
    assert http_get(httpd.url + "/ready.txt") == (200, "ready\n")


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_example_config_passes_apache2_t(harness, mpm):
    """conf/psdm_socket.conf, included verbatim into a minimal server, is accepted."""
    conf = os.path.join(harness.run_dir, "check.conf")
    with open(conf, "w") as f:
        f.write(harness.httpd_config(8, f"Include {REPO}/conf/psdm_socket.conf\n", mpm=mpm))
    r = subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Syntax OK" in r.stderr
    # The .load file names the module symbol our build exports.
    with open(os.path.join(REPO, "conf/psdm_socket.load")) as f:
        assert "LoadModule psdm_socket_module " in f.read()


def test_bad_directive_value_fails_apache2_t(harness):
    conf = os.path.join(harness.run_dir, "bad.conf")
    with open(conf, "w") as f:
        f.write(harness.httpd_config(8, "PsdmSocketWorker /no/unix/prefix.sock\n"))
    r = subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
    assert r.returncode != 0
    assert "PsdmSocketWorker" in r.stderr and "/no/unix/prefix.sock" in r.stderr


def test_kcat_to_worker_consumer_100_messages_in_order(harness):
    broker = harness.start_broker(topics=["elog"], partitions=1)
    values = [json.dumps({"experiment_name": "xpptut15", "seq": i}) for i in range(100)]
    broker.produce("elog", values)
    tail = subprocess.run([os.path.join(BUILD, "psdm_kafka_tail"), "-b", broker.bootstrap, "-t", "elog",
                           "--from-beginning", "--count", "100", "--timeout-ms", "30000"],
                          capture_output=True, text=True, timeout=60)
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 100
    got = [json.loads(line.split("\t", 3)[3]) for line in lines]
    assert [m["seq"] for m in got] == list(range(100))
    assert [int(line.split("\t")[2]) for line in lines] == list(range(100))  # offsets


def test_harness_names_the_component_when_its_port_is_taken(harness):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(HarnessError) as e:
            harness.start_httpd(port=port, timeout=10)
    msg = str(e.value)
    assert msg.startswith("httpd ")
    assert "Address already in use" in msg


def test_harness_stops_what_it_started(harness):
    broker = harness.start_broker()
    httpd = harness.start_httpd()
    pids = [broker.proc.pid, httpd.proc.pid]
    harness.close(failed=False)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    harness.procs.clear()
    os.makedirs(harness.run_dir, exist_ok=True)  # the fixture closes again


def test_missing_binary_is_named(harness):
    with pytest.raises(HarnessError, match="not found"):
        harness.spawn("nothing", [os.path.join(BUILD, "does_not_exist")])
