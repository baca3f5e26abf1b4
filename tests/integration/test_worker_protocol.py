"""psdm_socketd against clients that misbehave, stall or go quiet, and a Kafka
broker that goes away: the worker answers per the protocol, logs once, and every
client that behaves keeps getting every message."""
import json
import time
import urllib.error
import urllib.request

import pytest

from rawws import RawEio
from test_worker import base_config, msg


def start(harness, **extra):
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker, **extra))
    return broker, worker


@pytest.mark.parametrize("kind", ["node4", "node2"])
def test_ping_keeps_an_idle_connection_alive(harness, kind):
    broker, worker = start(harness, ping_interval_ms=1000, ping_timeout_ms=1000)
    client = harness.start_client(kind, worker.url, join=["xpptut15"], count=1, extra=["--no-reconnect"])
    client.wait("ready")
    # Idle for well past interval + timeout: only pings flow (v4 server->client, v3 client->server).
    time.sleep(4.0)  # the behaviour under test is "nothing happens for a while"
    broker.produce("elog", [msg("xpptut15", 7)])
    client.wait("done")
    assert not [e for e in client.events if e["ev"] == "disconnect"]


@pytest.mark.parametrize("eio", [4, 3])
def test_a_client_that_stops_answering_pings_is_dropped(harness, eio):
    broker, worker = start(harness, ping_interval_ms=1000, ping_timeout_ms=1000)
    raw = RawEio(worker.url, eio=eio)
    assert raw.open["pingInterval"] == 1000 and raw.open["pingTimeout"] == 1000
    raw.connect_ns()
    code, reason = raw.wait_close()  # never answers "2" (v4) / never sends "2" (v3)
    assert (code, reason) == (1000, "ping timeout")
    raw.close()


def test_polling_transport_gets_an_engineio_error(harness):
    broker, worker = start(harness)
    url = worker.url + "/lgbk_socketio/socket.io/?EIO=4&transport=polling&t=abc"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=5)
    assert e.value.code == 400
    assert json.loads(e.value.read()) == {"code": 0, "message": "transport unknown"}


@pytest.mark.parametrize("bad, code, reason", [
    ("4x", 1002, "malformed Socket.IO packet: bad_type"),
    ('42/psdm_ws,["join"', 1002, "malformed Socket.IO packet: bad_json"),
    ("9", 1002, "malformed Engine.IO packet"),
    (b"\x01\x02", 1003, "binary frames are not supported"),
    ("42/psdm_ws," + json.dumps(["join", "x" * 3000]), 1009, "frame too large"),
], ids=["bad-sio-type", "bad-json", "bad-eio-type", "binary", "too-large"])
def test_bad_packets_close_that_client_only(harness, bad, code, reason):
    broker, worker = start(harness, max_payload="2k")
    good = harness.start_client("node4", worker.url, join=["xpptut15"], count=2)
    good.wait("ready")
    raw = RawEio(worker.url)
    raw.connect_ns()
    if isinstance(bad, bytes):
        raw.send_binary(bad)
    else:
        raw.send(bad)
    assert raw.wait_close() == (code, reason)
    raw.close()
    broker.produce("elog", [msg("xpptut15", 1), msg("xpptut15", 2)])
    good.wait("done")
    assert [m["seq"] for m in good.messages()] == [1, 2]


def test_protocol_errors_that_keep_the_connection(harness):
    broker, worker = start(harness, max_rooms_per_client=3)
    raw = RawEio(worker.url)
    raw.send("40/nope,")
    assert raw.next_text() == '44/nope,{"message":"Invalid namespace"}'
    raw.connect_ns()
    raw.send('42/psdm_ws,1["join",42]')
    assert raw.next_text() == '43/psdm_ws,1[{"error":"invalid room"}]'
    raw.send('42/psdm_ws,2["shout","hi"]')
    assert raw.next_text() == '43/psdm_ws,2[{"error":"unknown event"}]'
    for i in range(3):
        raw.send(f'42/psdm_ws,{10 + i}["join","room{i}"]')
        assert raw.next_text() == f"43/psdm_ws,{10 + i}[]"
    raw.send('42/psdm_ws,20["join","room3"]')
    assert "too many rooms" in raw.next_text()
    raw.send('42/psdm_ws,21["leave","room0"]')
    assert raw.next_text() == "43/psdm_ws,21[]"
    broker.produce("elog", [msg("room0", 0), msg("room1", 1)])
    got = json.loads(raw.next_text()[len("42/psdm_ws,"):])
    assert got[0] == "psdm_ws_msg" and got[1]["seq"] == 1
    raw.close()


def test_slow_consumer_is_closed_and_others_get_everything(harness):
    # A backlog of 1 MiB holds ~100 of these 10 kB messages: a burst that a reading
    # client absorbs, and that a stalled one exceeds within the first few batches.
    broker, worker = start(harness, max_payload="16k", client_backlog="1M")
    good = harness.start_client("node4", worker.url, join=["busy"], name="client-good", timeout_ms=120000)
    good.wait("ready")
    stalled = RawEio(worker.url, rcvbuf=4096)
    stalled.connect_ns()
    stalled.send('42/psdm_ws,1["join","busy"]')
    assert stalled.next_text() == "43/psdm_ws,1[]"
    # The stalled client now reads nothing while 10 MB flow to the room, produced in
    # batches that the good client receives before the next (the dev broker keeps
    # only a few MB per partition).
    pad = "p" * 10000
    for batch in range(10):
        broker.produce("elog", [msg("busy", batch * 100 + i, pad=pad) for i in range(100)])
        for _ in range(100):
            good.wait("msg")
    assert [m["seq"] for m in good.messages()] == list(range(1000))
    line = worker.wait_log(r"\[PSDM-SLOW\] client \d+ \(user ''\): client backlog .*closing with 1013").group(0)
    assert "1048576" in line
    stalled.close()


def test_worker_serves_while_kafka_is_down_and_resumes(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    broker.down()
    worker = harness.start_worker(base_config(broker), wait_kafka=False)
    client = harness.start_client("python", worker.url, join=["xpptut15"], count=2)
    client.wait("ready")  # clients are served while Kafka is unreachable
    broker.up()
    worker.wait_log(r"ready: [1-9]\d* partition\(s\) assigned", timeout=60)
    broker.produce("elog", [msg("xpptut15", 1)])
    # Lost later: the worker keeps its clients and resumes delivery when the broker returns.
    broker.down()
    broker.up()
    broker.produce("elog", [msg("xpptut15", 2)])
    client.wait("done", timeout=60)
    assert [m["seq"] for m in client.messages()] == [1, 2]


def test_connections_past_the_limit_are_refused_cleanly(harness):
    broker, worker = start(harness, max_connections=5)
    clients = [RawEio(worker.url) for _ in range(5)]
    with pytest.raises(Exception):  # the handshake is refused: no 101
        RawEio(worker.url)
    worker.wait_log(r"refused upgrade: at capacity \(5 connections\)")
    clients.pop().close()
    # The worker frees the slot when it sees the close; then a new client gets in.
    harness.wait_for(worker.proc, lambda: _can_connect(worker.url), "a slot to be freed", 10)
    for c in clients:
        c.connect_ns()  # the others were never disturbed
        c.close()


def _can_connect(url):
    try:
        RawEio(url, timeout=2).close()
        return True
    except Exception:  # noqa: BLE001 - refused while the slot is still taken
        return False
