"""Resume (issue 12) with real clients and real failures: socket.io-client 4.x and 2.x and
python-socketio keep positions as a page does (tests/integration/clients, --resume) and
come back after a kill -9 of their worker, to a new worker that has nothing in memory: what
they missed is read from Kafka, exactly once and in order. Positions mean the same on every
worker; a position Kafka no longer holds is answered recovered: false; a user whose access
was removed while away gets nothing.

The workers here start at the latest offsets, as shipped (a restarted worker does not replay
the topic to everyone): only the resume brings back what was published while it was down."""
import os
import signal
import time

import stack
from harness import worker_config
from rawws import RawEio
from test_admin import admin_port, scrape, value
from test_resume import join, keep, message
from test_worker import MOCK_FETCH_WAIT, msg

ROOM = "xpptut15"


def kill9(harness, worker):
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.popen.wait()
    harness.procs.remove(worker.proc)


def seqs(client):
    return [m["seq"] for m in client.messages() if m.get("experiment_name") == ROOM]


def test_clients_get_every_record_once_across_a_kill_9_of_their_worker(harness):
    broker, worker, httpd, sock = stack.start(harness, kafka__auto__offset__reset="latest")
    clients = [harness.start_client(kind, httpd.url, join=[ROOM], count=9, timeout_ms=90000, name=f"client-{kind}",
                                    extra=["--resume"])
               for kind in ("node4", "node2", "python")]
    for c in clients:
        c.wait("ready")
    broker.produce("elog", [msg(ROOM, 1), msg("other", 0), msg(ROOM, 2), msg(ROOM, 3)])
    for c in clients:
        for _ in range(3):
            c.wait("msg")
    kill9(harness, worker)
    for c in clients:
        c.wait("disconnect", timeout=10)
    broker.produce("elog", [msg(ROOM, 4), msg("other", 0), msg(ROOM, 5)])  # while no worker runs
    broker.produce("experiments", [msg(ROOM, 6)])
    stack.start_worker(harness, broker, sock, name="worker2", kafka__auto__offset__reset="latest")
    broker.produce("elog", [msg(ROOM, 7), msg(ROOM, 8)])
    broker.produce("experiments", [msg(ROOM, 9)])
    for c in clients:
        c.wait("done", timeout=60)
        got = c.messages()
        # Exactly once each, in Kafka order per partition (elog: 1..5, 7, 8; experiments: 6, 9).
        assert sorted(seqs(c)) == list(range(1, 10)), (c.proc.name, seqs(c))
        elog = [m["seq"] for m in got if m["psdm_ws_msg_type"] == "elog"]
        assert elog == [1, 2, 3, 4, 5, 7, 8], (c.proc.name, elog)
        acks = [e["args"][0] for e in c.events if e["ev"] == "ack"]
        assert [a["recovered"] for a in acks] == [True, True], (c.proc.name, acks)
        assert not [e for e in c.events if e["ev"] == "resync"]


def test_positions_from_one_worker_resume_on_another(harness):
    """Two workers (two hosts) read the same topics: a client that got records on the first
    and comes back on the second, started while it was away (nothing in its memory), gets
    what it missed there, from Kafka."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    first = worker_of_latest(harness, broker, name="worker-a", authz="allow-all")
    positions = away_after_one_record(broker, first)
    broker.produce("elog", [msg("r1", 3), msg("r2", 0), msg("r1", 4)])
    second = worker_of_latest(harness, broker, name="worker-b", authz="allow-all", admin_listen="127.0.0.1:0")
    elsewhere = RawEio(second.url)
    elsewhere.connect_ns()
    (ack,) = join(elsewhere, 1, "r1", positions)
    assert ack["recovered"] is True, ack
    assert [message(elsewhere)["seq"] for _ in range(2)] == [3, 4]  # what it missed, after 1
    broker.produce("elog", [msg("r1", 5)])
    assert message(elsewhere)["seq"] == 5
    elsewhere.close()
    # The second worker counted it (read with Debian's prometheus_client parser).
    families = scrape(admin_port(second))
    assert value(families, "psdm_socketd_resumes_total", outcome="recovered") == 1
    assert value(families, "psdm_socketd_replay_kafka_reads_total") == 1
    assert value(families, "psdm_socketd_replay_kafka_records_total") == 3  # r1, r2, r1
    assert value(families, "psdm_socketd_replayed_records_total") == 2
    assert value(families, "psdm_socketd_resumes_in_progress") == 0


def worker_of_latest(harness, broker, name="worker", **config):
    """A worker on its own broker's topics, at the latest offsets as shipped."""
    return harness.start_worker(worker_config(kafka__bootstrap__servers=broker.bootstrap,
                                              topics="elog,experiments", **MOCK_FETCH_WAIT, **config), name=name)


def away_after_one_record(broker, worker, room="r1"):
    """A client joins `room`, gets one record and goes away: returns the positions it keeps."""
    raw = RawEio(worker.url)
    raw.connect_ns()
    (ack,) = join(raw, 1, room, {})
    positions = dict(ack["positions"])
    broker.produce("elog", [msg(room, 1)])
    keep(positions, message(raw))
    raw.close()
    return positions


def test_a_position_kafka_no_longer_holds_is_not_recovered(harness):
    """The broker keeps 5 MB per partition (the mock cluster's retention): past that, the
    oldest records are gone and a resume from before them cannot be served."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = worker_of_latest(harness, broker, authz="allow-all", recovery_max_bytes="0")
    positions = away_after_one_record(broker, worker)
    big = "x" * 200_000
    for _ in range(4):  # 8 MB of another room's records: the first ones are deleted
        broker.produce("elog", [msg("r2", i, pad=big) for i in range(10)])
    broker.produce("elog", [msg("r1", 2)])
    back = RawEio(worker.url)
    back.connect_ns()
    (ack,) = join(back, 1, "r1", positions)
    assert ack["recovered"] is False, ack
    assert ack["reason"].startswith("cannot read elog/0 from offset 1: Kafka: "), ack
    broker.produce("elog", [msg("r1", 3)])
    # Live goes on; nothing of the gap came (record 2 comes if the worker had not consumed it
    # when the client joined: then it is live, past the ack's position).
    live = [message(back)]
    if live[0]["seq"] == 2:
        live.append(message(back))
    assert live[-1]["seq"] == 3
    for record in live:
        assert int(record["psdm_ws_msg_position"].rsplit("/", 1)[1]) >= ack["positions"]["elog/0"]
    worker.wait_log(r"no resume in room 'r1': cannot read elog/0 from offset 1")
    back.close()


def test_a_user_whose_access_was_removed_while_away_gets_nothing_on_resume(harness):
    acl = os.path.join(harness.run_dir, "rooms.acl")
    with open(acl, "w") as f:
        f.write("r1   %anonymous\n")
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = worker_of_latest(harness, broker, authz=f"file:{acl}")
    positions = away_after_one_record(broker, worker)
    broker.produce("elog", [msg("r1", 2)])
    with open(acl, "w") as f:  # access removed while the client is away
        f.write("r9   %anonymous\n")
    os.kill(worker.proc.pid, signal.SIGHUP)
    worker.wait_log(r"reload \(SIGHUP\)")
    back = RawEio(worker.url)
    back.connect_ns()
    assert join(back, 1, "r1", positions) == [{"error": "forbidden", "room": "r1"}]
    back.send('42/psdm_ws,2["join","r9"]')
    assert back.next_text() == "43/psdm_ws,2[]"  # the next frame: nothing of r1 came first
    back.close()


def test_a_client_away_for_60_s_resumes_from_memory(harness):
    """A laptop that slept a minute: what it missed is still in the worker's window
    (recovery_window_ms, 5 minutes by default), so nothing is read from Kafka."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = worker_of_latest(harness, broker, authz="allow-all", admin_listen="127.0.0.1:0")
    watcher = RawEio(worker.url)  # in the room all along: tells when the worker has each record
    watcher.connect_ns()
    join(watcher, 1, "r1")
    positions = away_after_one_record(broker, worker)
    assert message(watcher)["seq"] == 1
    away_since = time.monotonic()
    broker.produce("elog", [msg("r1", 2), msg("r2", 0), msg("r1", 3)])
    assert [message(watcher)["seq"] for _ in range(2)] == [2, 3]
    while time.monotonic() - away_since < 60:  # the minute away is what is tested
        time.sleep(min(5.0, 60 - (time.monotonic() - away_since)))
        watcher.send("3")  # keep the watcher's connection alive (it answers pings too)
    back = RawEio(worker.url)
    back.connect_ns()
    (ack,) = join(back, 1, "r1", positions)
    assert ack["recovered"] is True, ack
    assert [message(back)["seq"] for _ in range(2)] == [2, 3]
    families = scrape(admin_port(worker))
    assert value(families, "psdm_socketd_replay_kafka_reads_total") == 0  # from memory
    assert value(families, "psdm_socketd_replayed_records_total") == 2
    for raw in (watcher, back):
        raw.close()
