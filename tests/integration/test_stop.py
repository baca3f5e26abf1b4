"""SIGTERM drains: the worker closes every websocket with 1001 "going away" (a WebSocket
close only, no Socket.IO disconnect, so that socket.io-client reconnects by itself), waits
for those close frames to leave and exits 0; pages then reconnect to the worker that
replaces it and receive again."""
import signal
import time

from rawws import RawEio
from test_faults import upgrade_status
from test_worker import base_config, msg


def test_sigterm_closes_every_client_with_1001_and_they_come_back(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker))
    port = worker.port
    clients = [harness.start_client(kind, worker.url, join=["r1"], name=f"client-{kind}")
               for kind in ("node4", "node2")]
    for c in clients:
        c.wait("ready")
    raw = RawEio(worker.url)
    raw.connect_ns()

    t0 = time.monotonic()
    worker.proc.popen.send_signal(signal.SIGTERM)
    assert raw.wait_close() == (1001, "server stopping")
    raw.close()
    for c in clients:
        assert c.wait("disconnect")["reason"] == "transport close"  # the reason socket.io-client reconnects on
    assert worker.proc.popen.wait(timeout=10) == 0
    took = time.monotonic() - t0
    log = worker.log_text()
    assert "stopping: closing 3 client(s) with 1001" in log
    assert "still open after the shutdown timeout" not in log
    assert took < 5, f"the drain took {took:.1f} s"

    # The replacement on the same port: both pages reconnect by themselves and receive.
    again = harness.start_worker(base_config(broker, listen=f"127.0.0.1:{port}"), name="worker2")
    for c in clients:
        c.wait("ready", timeout=30)
    broker.produce("elog", [msg("r1", 1)])
    for c in clients:
        assert c.wait("msg")["data"]["seq"] == 1
    assert again.proc.stop() == 0


def test_a_drain_refuses_new_upgrades_and_ends_at_shutdown_timeout(harness):
    """A client that stops reading holds the drain until shutdown_timeout_ms; meanwhile new
    upgrades get 503 with Retry-After, and the worker exits 0 when the time is up."""
    records = 1000  # 2 MB for a client that reads nothing: more than the kernel buffers take from it
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker, shutdown_timeout_ms="1500", client_backlog="33554432"))
    stuck = RawEio(worker.url, rcvbuf=4096)
    stuck.connect_ns()
    stuck.send('42/psdm_ws,1["join","r1"]')
    assert stuck.next_text().startswith("43/psdm_ws,1")
    reader = RawEio(worker.url)
    reader.connect_ns()
    reader.send('42/psdm_ws,1["join","r1"]')
    assert reader.next_text().startswith("43/psdm_ws,1")
    broker.produce("elog", [msg("r1", i, pad="x" * 2000) for i in range(records)])
    for i in range(records):  # routed: what the stuck client did not take is queued for it
        assert f'"seq": {i},' in reader.next_text()
    reader.close()

    t0 = time.monotonic()
    worker.proc.popen.send_signal(signal.SIGTERM)
    worker.wait_log(r"stopping: closing \d+ client\(s\) with 1001")
    status, headers = upgrade_status(worker.port)
    assert (status, headers.get("Retry-After")) == (503, "5"), (status, headers)
    worker.wait_log(r"refused upgrade: the worker is stopping; answered 503")
    assert worker.proc.popen.wait(timeout=10) == 0
    took = time.monotonic() - t0
    assert "1 client(s) still open after the shutdown timeout" in worker.log_text()
    assert 1.4 < took < 5, f"exit {took:.1f} s after SIGTERM"
    stuck.close()
