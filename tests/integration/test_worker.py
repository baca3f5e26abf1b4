"""psdm_socketd with real Socket.IO clients on its direct `listen` port and real
Kafka traffic from kcat through the broker."""
import json

import pytest

from harness import worker_config

CLIENT_KINDS = ["node4", "node2", "python"]


# The mock broker (librdkafka's mock cluster) holds every empty fetch for the consumer's
# whole fetch.wait.max.ms, where a real broker answers as soon as a record arrives: with the
# worker's default (100 ms) every test would wait for the mock, not the worker.
MOCK_FETCH_WAIT = dict(kafka__fetch__wait__max__ms="10")


def base_config(broker, **extra):
    """A worker config for a test's own, fresh broker. The worker starts at the
    latest offsets by default; a test's topics start empty, so reading them from the
    beginning loses nothing and removes the race between the consumer resolving
    "latest" and the test's first produce."""
    keys = dict(kafka__bootstrap__servers=broker.bootstrap, kafka__auto__offset__reset="earliest",
                topics="elog,experiments", authz="allow-all", **MOCK_FETCH_WAIT)
    keys.update(extra)
    return worker_config(**keys)


def start_stack(harness, **extra):
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker, **extra))
    return broker, worker


def msg(room, seq, **more):
    return json.dumps(dict(experiment_name=room, seq=seq, **more))


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_client_joins_room_and_receives_kafka_messages(harness, kind):
    broker, worker = start_stack(harness)
    client = harness.start_client(kind, worker.url, join=["xpptut15"], count=3)
    ack = client.wait("ack")
    assert ack["room"] == "xpptut15"
    client.wait("ready")
    broker.produce("elog", [msg("xpptut15", i, text="entry") for i in range(3)])
    client.wait("done")
    got = client.messages()
    # python-socketio runs each event handler in a thread of its own, so its order of
    # arrival is not the wire order; the JavaScript clients keep it.
    seqs = [m["seq"] for m in got]
    assert (sorted(seqs) if kind == "python" else seqs) == [0, 1, 2]
    assert all(m["psdm_ws_msg_type"] == "elog" and m["experiment_name"] == "xpptut15" for m in got)


def test_room_isolation_over_1000_messages(harness):
    broker, worker = start_stack(harness)
    a = harness.start_client("node4", worker.url, join=["roomA"], count=500, name="client-a")
    b = harness.start_client("node2", worker.url, join=["roomB"], count=500, name="client-b")
    a.wait("ready")
    b.wait("ready")
    broker.produce("elog", [msg("roomA" if i % 2 == 0 else "roomB", i) for i in range(1000)])
    a.wait("done", timeout=60)
    b.wait("done", timeout=60)
    assert [m["seq"] for m in a.messages()] == list(range(0, 1000, 2))
    assert [m["seq"] for m in b.messages()] == list(range(1, 1000, 2))
    assert {m["experiment_name"] for m in a.messages()} == {"roomA"}
    assert {m["experiment_name"] for m in b.messages()} == {"roomB"}


def test_global_room_gets_global_topics_only(harness):
    broker, worker = start_stack(harness)
    glob = harness.start_client("node4", worker.url, join=["the_global_room"], count=2, name="client-global")
    room = harness.start_client("python", worker.url, join=["xpptut15"], count=2, name="client-room")
    glob.wait("ready")
    room.wait("ready")
    broker.produce("elog", [msg("xpptut15", 0)])                     # room only
    broker.produce("experiments", [msg("xpptut15", 1)])              # room and global
    broker.produce("experiments", [json.dumps({"seq": 2, "name": "new experiment"})])  # global only (no room field)
    glob.wait("done")
    room.wait("done")
    # Order holds within a topic's partition, not across topics.
    assert sorted((m["seq"], m["psdm_ws_msg_type"]) for m in glob.messages()) == [(1, "experiments"), (2, "experiments")]
    assert sorted((m["seq"], m["psdm_ws_msg_type"]) for m in room.messages()) == [(0, "elog"), (1, "experiments")]


def test_two_workers_on_one_broker_both_deliver_everything(harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    w1 = harness.start_worker(base_config(broker), name="worker1")
    w2 = harness.start_worker(base_config(broker), name="worker2")
    c1 = harness.start_client("node4", w1.url, join=["xpptut15"], count=100, name="client-w1")
    c2 = harness.start_client("node4", w2.url, join=["xpptut15"], count=100, name="client-w2")
    c1.wait("ready")
    c2.wait("ready")
    broker.produce("elog", [msg("xpptut15", i) for i in range(100)])
    c1.wait("done")
    c2.wait("done")
    assert [m["seq"] for m in c1.messages()] == list(range(100))
    assert [m["seq"] for m in c2.messages()] == list(range(100))


def test_bad_records_are_skipped_and_logged_and_delivery_goes_on(harness):
    broker, worker = start_stack(harness, max_payload="1k")
    client = harness.start_client("node4", worker.url, join=["xpptut15"], count=2)
    client.wait("ready")
    broker.produce("elog", [
        msg("xpptut15", 0),
        "this is not json",
        "[1,2,3]",
        json.dumps({"no_room": True}),
        msg("xpptut15", 99, pad="x" * 2000),   # over max_payload
        msg("xpptut15", 1),
    ])
    client.wait("done")
    assert [m["seq"] for m in client.messages()] == [0, 1]
    log = worker.wait_log(r"skipped record elog/0@1: not_json").string
    assert "PSDM-KAFKA" in log
