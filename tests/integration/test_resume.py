"""Resume (issue 12): a client that comes back joins with the positions it last saw and gets
exactly what it missed, before anything live: from the worker's memory (the replay window), or
beyond it from Kafka. What cannot be had (reads disabled, too many records, bad positions) gets
recovered: false and a reason, and nothing is replayed (the page reloads its data)."""
import json
import os

from rawws import RawEio
from test_worker import base_config, msg


def join(raw, ack_id, room, positions=None):
    """Sends a join (with positions when given) and returns the ack's arguments."""
    args = [room] if positions is None else [room, positions]
    raw.send(f"42/psdm_ws,{ack_id}" + json.dumps(["join"] + args))
    text = raw.next_text()
    prefix = f"43/psdm_ws,{ack_id}"
    assert text.startswith(prefix), text
    return json.loads(text[len(prefix):])


def message(raw):
    """The record of the next psdm_ws_msg event."""
    text = raw.next_text()
    assert text.startswith('42/psdm_ws,["psdm_ws_msg",'), text
    return json.loads(text[len("42/psdm_ws,"):])[1]


def keep(positions, record):
    """What a page keeps: one past the last offset seen, per partition."""
    topic, partition, offset = record["psdm_ws_msg_position"].rsplit("/", 2)
    positions[f"{topic}/{partition}"] = int(offset) + 1


def start(harness, **config):
    broker = harness.start_broker(topics=["elog", "experiments"])
    return broker, harness.start_worker(base_config(broker, **config))


def connected(worker):
    raw = RawEio(worker.url)
    raw.connect_ns()
    return raw


def watching(broker, worker, room):
    """A client in `room` that has seen one record of each topic (so the worker knows both
    partitions' positions); returns it."""
    watcher = connected(worker)
    join(watcher, 1, room)
    broker.produce("elog", [msg(room, "warm")])
    broker.produce("experiments", [msg(room, "warm")])
    assert [message(watcher)["seq"] for _ in range(2)] == ["warm", "warm"]
    return watcher


def test_a_client_that_comes_back_gets_exactly_what_it_missed(harness):
    broker, worker = start(harness)
    # A second client, in the room all along, tells when the worker has the records.
    watcher = watching(broker, worker, "r1")
    first = connected(worker)
    (ack,) = join(first, 1, "r1", {})
    assert ack["recovered"] is True and isinstance(ack["positions"], dict)
    positions = dict(ack["positions"])
    broker.produce("elog", [msg("r1", i) for i in range(3)])
    for i in range(3):
        record = message(first)
        assert record["seq"] == i
        keep(positions, record)
    assert positions == {"elog/0": 4, "experiments/0": 1}
    first.close()  # away: what follows is missed
    broker.produce("elog", [msg("r2", "other"), msg("r1", 3), msg("r1", 4)])
    broker.produce("experiments", [msg("r1", 5)])
    back_from = dict(positions)

    broker.produce("elog", [msg("r1", "mark")])
    seen = {message(watcher)["seq"] for _ in range(3 + 4)}  # 0..2, then the four missed
    assert seen == {0, 1, 2, 3, 4, 5, "mark"}
    # Back: a new connection resumes.
    again = connected(worker)
    (ack,) = join(again, 7, "r1", back_from)
    assert ack["recovered"] is True, ack
    assert ack["positions"] == {"elog/0": 8, "experiments/0": 2}
    got = [message(again) for _ in range(4)]
    assert [r["seq"] for r in got] == [3, 4, "mark", 5]  # per partition, in Kafka order
    assert [r["psdm_ws_msg_type"] for r in got] == ["elog", "elog", "elog", "experiments"]
    # Then live, nothing twice.
    broker.produce("elog", [msg("r1", 6)])
    assert message(again)["seq"] == 6
    for raw in (watcher, again):
        raw.close()


def small_window(harness, **config):
    """A worker whose window holds about two records, and six records of r1 it published."""
    broker, worker = start(harness, recovery_max_bytes="1k", **config)
    watcher = connected(worker)
    join(watcher, 1, "r1")
    broker.produce("elog", [msg("r1", i, pad="x" * 200) for i in range(6)])
    for i in range(6):
        assert message(watcher)["seq"] == i
    return broker, worker, watcher


def test_what_the_window_no_longer_holds_is_read_from_kafka(harness):
    broker, worker, watcher = small_window(harness)
    late = connected(worker)
    (ack,) = join(late, 1, "r1", {"elog/0": 1, "experiments/0": 0})
    assert ack["recovered"] is True, ack
    assert ack["positions"] == {"elog/0": 6, "experiments/0": 0}
    assert [message(late)["seq"] for _ in range(5)] == [1, 2, 3, 4, 5]
    broker.produce("elog", [msg("r1", "live")])
    assert message(late)["seq"] == "live"
    for raw in (watcher, late):
        raw.close()


def test_without_kafka_reads_what_the_window_no_longer_holds_is_not_recovered(harness):
    broker, worker, watcher = small_window(harness, recovery_max_records=0)
    late = connected(worker)
    (ack,) = join(late, 1, "r1", {"elog/0": 1, "experiments/0": 0})
    assert ack["recovered"] is False
    assert ack["reason"] == "the worker no longer holds elog/0 from offset 1"
    assert ack["positions"] == {"elog/0": 6, "experiments/0": 0}
    # Nothing was replayed: the next message is live.
    broker.produce("elog", [msg("r1", "live")])
    assert message(late)["seq"] == "live"
    worker.wait_log(r"no resume in room 'r1': the worker no longer holds elog/0 from offset 1")
    for raw in (watcher, late):
        raw.close()


def test_a_resume_reads_no_more_than_recovery_max_records(harness):
    broker, worker, watcher = small_window(harness, recovery_max_records=4)
    late = connected(worker)
    (ack,) = join(late, 1, "r1", {"elog/0": 1, "experiments/0": 0})  # 5 to read
    assert (ack["recovered"], ack["reason"]) == \
        (False, "more than recovery_max_records (4) to read in elog/0 from offset 1"), ack
    (ack,) = join(late, 2, "r1", {"elog/0": 2, "experiments/0": 0})  # 4: allowed
    assert ack["recovered"] is True, ack
    assert [message(late)["seq"] for _ in range(4)] == [2, 3, 4, 5]
    for raw in (watcher, late):
        raw.close()


def test_a_partition_the_client_does_not_name_is_not_recovered(harness):
    broker, worker = start(harness)
    watcher = watching(broker, worker, "r1")
    raw = connected(worker)
    (ack,) = join(raw, 1, "r1", {"elog/0": 1})  # it may have missed experiments/0's record
    assert (ack["recovered"], ack["reason"]) == (False, "no position for experiments/0"), ack
    for r in (watcher, raw):
        r.close()


def test_bad_positions_are_refused_with_a_reason_and_the_join_still_works(harness):
    broker, worker = start(harness)
    raw = connected(worker)
    cases = [
        ({"secret/0": 1}, "position of topic 'secret', which this worker does not consume"),
        ({"elog/0": -5}, "position of 'elog/0' is not an offset (an integer 0 .. 2^53 - 1)"),
        ("elog/0/12", "positions are not a JSON object"),
    ]
    for i, (positions, reason) in enumerate(cases):
        (ack,) = join(raw, 10 + i, f"r{i}", positions)
        assert (ack["recovered"], ack["reason"]) == (False, reason), ack
    broker.produce("elog", [msg("r0", "still joined")])
    assert message(raw)["seq"] == "still joined"
    raw.close()


def test_a_room_the_user_may_not_join_gets_nothing_on_resume(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    with open(acl, "w") as f:
        f.write("open-*   %anonymous\n")
    broker, worker = start(harness, authz=f"file:{acl}")
    watcher = connected(worker)
    join(watcher, 1, "open-1")
    broker.produce("elog", [msg("secret", 1), msg("open-1", 2)])
    assert message(watcher)["seq"] == 2
    raw = connected(worker)
    assert join(raw, 1, "secret", {"elog/0": 0}) == [{"error": "forbidden", "room": "secret"}]
    raw.send('42/psdm_ws,2["join","open-1"]')
    assert raw.next_text() == "43/psdm_ws,2[]"  # the next frame: no record of 'secret' came first
    for r in (watcher, raw):
        r.close()
