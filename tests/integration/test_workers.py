"""Several workers behind one Apache location (issue 13): `PsdmSocketWorker` lists their
sockets, upgrades take turns, and a worker that does not take one (killed, restarting) is
skipped: while one worker lives, no page gets a 503. Every worker consumes every record, so
a room spread over workers gets every record from each."""
import os
import re
import signal
import time

import stack
from rawws import RawEio
from test_faults import PATH, drop, upgrade_status, wait_msg
from test_module_ops import LOCATION, ssl_conf
from test_worker import msg


def start_two(harness):
    """A broker, two workers (each its own handoff socket) and Apache with both."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    socks = [os.path.join(harness.sock_dir, f"w{i}.sock") for i in (1, 2)]
    workers = [stack.start_worker(harness, broker, s, name=f"worker{i}") for i, s in enumerate(socks, 1)]
    body = stack.apache_body(socks[0]).replace(f"unix:{socks[0]}\n", f"unix:{socks[0]} unix:{socks[1]}\n")
    assert f"unix:{socks[1]}" in body
    return broker, workers, harness.start_httpd(body)


def connected(worker, user="demo"):
    return len(re.findall(rf"client \d+ connected \(user '{user}'", worker.log_text()))


def test_upgrades_take_turns_over_the_workers_and_every_client_gets_every_record(harness):
    broker, workers, httpd = start_two(harness)
    clients = []
    for i in range(6):  # one after another: the turns alternate
        c = harness.start_client("node4", httpd.url, path=PATH, join=["xpptut15"], count=2, name=f"client-{i}")
        c.wait("ready")
        clients.append(c)
    assert [connected(w) for w in workers] == [3, 3]
    broker.produce("elog", [msg("xpptut15", 1), msg("other", 0), msg("xpptut15", 2)])
    for c in clients:
        c.wait("done")
        assert [m["seq"] for m in c.messages()] == [1, 2]


def test_a_worker_killed_under_load_costs_no_upgrade_and_its_clients_move(harness):
    broker, workers, httpd = start_two(harness)
    clients = [harness.start_client(kind, httpd.url, path=PATH, join=["xpptut15"], name=f"client-{i}",
                                    timeout_ms=90000, extra=["--resume"])
               for i, kind in enumerate(["node4", "node2"] * 2)]
    for c in clients:
        c.wait("ready")
    on_first = connected(workers[0])
    assert on_first == 2
    os.kill(workers[0].proc.pid, signal.SIGKILL)
    drop(harness, workers[0].proc)
    # Every new upgrade is taken, by the survivor: none gets a 503.
    statuses = [upgrade_status(httpd.port)[0] for _ in range(20)]
    assert statuses == [101] * 20, statuses
    log = open(os.path.join(harness.run_dir, "httpd.log")).read()
    assert "PSDM0008" in log and "; trying the next" in log and "PSDM0014" not in log
    # The killed worker's clients come back, to the other one (resuming: a record published
    # while they reconnect reaches them too), and every client gets the record once.
    broker.produce("elog", [msg("xpptut15", 7)])
    for c in clients:
        wait_msg(c, 7, timeout=30)
    assert connected(workers[1]) == 2 + 2 + 20
    for c in clients:
        assert [m["seq"] for m in c.messages()] == [7]


def test_a_relay_to_a_worker_that_does_not_answer_goes_to_the_next_within_the_timeout(harness):
    """TLS connections are relayed: Apache waits for the worker's first bytes at most
    PsdmSocketTimeout, then (nothing has reached the client) offers the upgrade to the next
    worker. A stopped worker (SIGSTOP) still accepts Unix connections in its backlog."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    socks = [os.path.join(harness.sock_dir, f"w{i}.sock") for i in (1, 2)]
    workers = [stack.start_worker(harness, broker, s, name=f"worker{i}") for i, s in enumerate(socks, 1)]
    httpd = harness.start_httpd(ssl_conf(harness) + "SSLEngine on\n"
                                + f"PsdmSocketWorker unix:{socks[0]} unix:{socks[1]}\nPsdmSocketTimeout 500ms\n"
                                + LOCATION, https=True)
    os.kill(workers[0].proc.pid, signal.SIGSTOP)
    try:
        for i in range(4):  # the turns alternate: two of these try the stopped one first
            t0 = time.monotonic()
            raw = RawEio(httpd.url, path=PATH, origin=httpd.url)  # wss://: the 101 and Engine.IO's open
            raw.connect_ns()
            assert time.monotonic() - t0 < 0.5 + 2.0, f"upgrade {i} took {time.monotonic() - t0:.2f} s"
            raw.close()
    finally:
        os.kill(workers[0].proc.pid, signal.SIGCONT)
    log = open(os.path.join(harness.run_dir, "httpd.log")).read()
    assert len(re.findall(r"PSDM0008: worker at \S+w1\.sock unavailable .*relay answer failed; trying the next",
                          log)) == 2, log[-2000:]
    assert connected(workers[1], user="alice") == 4
