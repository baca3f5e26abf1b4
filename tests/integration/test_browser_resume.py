"""The browser client's resume (issue 12) in headless Chromium, through Apache, across a
worker restart: the page joins again with the positions it holds and gets what it missed,
or is told to resync (psdm_ws_resync) when no worker can send it; and it drops what it
already has."""
import json
import os

import pytest
import websocket  # Debian's python3-websocket, as rawws

import stack
from harness import HarnessError
from rawws import RawEio
from test_browser import msg

ROOM = "xpptut15"
IOS = pytest.mark.parametrize("io", ["none", "4", "2"], ids=["native", "socket.io-4", "socket.io-2"])


def open_page(harness, httpd, io):
    """The demo page of ROOM with the given socket.io-client ("none": native), joined."""
    url = f"{httpd.url}/demo/room.html?experiment={ROOM}" + ("" if io == "none" else f"&io={io}")
    page = harness.start_browser(url, timeout_ms=150000)
    assert page.wait("ready", timeout=30)["room"] == ROOM
    return page


def received(page, n, timeout=30):
    """The seq of each of the page's next n messages."""
    return [page.wait("msg", timeout)["data"]["seq"] for _ in range(n)]


def seqs(page):
    return [e["data"]["seq"] for e in page.events if e["ev"] == "msg"]


def resyncs(page):
    return [e for e in page.events if e["ev"] == "resync"]


def stop(harness, worker):
    worker.proc.stop()  # the worker goes away with the page's connection
    harness.procs.remove(worker.proc)


def page_away(harness, io, seen, **worker_keys):
    """The whole stack and a page of ROOM that received the records `seen`; then its worker
    stops (the page's connection with it). Returns (broker, sock, page)."""
    broker, worker, httpd, sock = stack.start(harness, **worker_keys)
    page = open_page(harness, httpd, io)
    broker.produce("elog", [msg(ROOM, seq) for seq in seen])
    assert received(page, len(seen)) == list(seen)
    stop(harness, worker)
    return broker, sock, page


def warm_up(broker, worker, tries=15):
    """Returns once `worker` delivers what is produced from now on, in both topics. Started at
    the latest offsets (as deployed), its consumer resolves "latest" after its partitions are
    assigned (the worker's "ready"): a record produced in between is skipped. A client of its
    own, on its direct listener and in a room of its own, waits for a record of each topic."""
    raw = RawEio(worker.url, timeout=2)
    try:
        raw.connect_ns()
        raw.send('42/psdm_ws,1["join","warm-up"]')
        assert raw.next_text() == "43/psdm_ws,1[]"
        for topic in ("elog", "experiments"):
            for attempt in range(tries):
                broker.produce(topic, [msg("warm-up", attempt)])
                try:
                    while True:  # an earlier try's record of the other topic may come first
                        text = raw.next_text()
                        assert text.startswith('42/psdm_ws,["psdm_ws_msg",'), text
                        if json.loads(text[len("42/psdm_ws,"):])[1]["psdm_ws_msg_type"] == topic:
                            break
                    break
                except websocket.WebSocketTimeoutException:
                    continue  # skipped: "latest" was not resolved yet
            else:
                raise AssertionError(f"{worker.proc.name} delivered none of {tries} records of {topic}")
    finally:
        raw.close()


@IOS
def test_page_resyncs_when_the_worker_cannot_fill_the_gap(harness, io):
    # Neither the replay window nor Kafka: what the page misses, no worker sends again.
    no_recovery = dict(recovery_max_bytes="0", recovery_max_records="0")
    broker, sock, page = page_away(harness, io, [1], **no_recovery)
    broker.produce("elog", [msg(ROOM, 2)])  # while no worker runs
    # A new worker on the same socket, at the latest offsets as deployed (2 is before them).
    worker2 = stack.start_worker(harness, broker, sock, name="worker2", kafka__auto__offset__reset="latest",
                                 **no_recovery)
    warm_up(broker, worker2)
    resync = page.wait("resync", timeout=60)  # reconnected, joined with its positions, told to reload
    assert resync["room"] == ROOM and resync["reason"], resync
    broker.produce("elog", [msg(ROOM, 3)])
    assert received(page, 1) == [3]
    assert seqs(page) == [1, 3]
    assert len(resyncs(page)) == 1


@IOS
def test_page_gets_what_it_missed_across_a_worker_restart(harness, io):
    broker, sock, page = page_away(harness, io, [1, 2])
    broker.produce("elog", [msg(ROOM, 3), msg(ROOM, 4)])  # while no worker runs
    # The new worker starts at the latest offsets, as deployed: 3 and 4 are in no worker's
    # memory, only in Kafka. The page reaches it once it delivers records: it binds its
    # socket beside, and once warmed up the socket is moved to the path Apache connects to.
    # (So the page does not come back while the worker has no partitions yet, which the
    # worker answers once it knows where it stands: one path, the same on every run.)
    sock2 = os.path.join(harness.sock_dir, "handoff2.sock")
    worker2 = stack.start_worker(harness, broker, sock2, name="worker2", kafka__auto__offset__reset="latest")
    warm_up(broker, worker2)
    os.rename(sock2, sock)
    page.wait("ready", timeout=60)  # reconnected and joined with its positions
    try:
        missed = received(page, 2, timeout=20)
    except HarnessError as e:
        pytest.fail(f"the page did not get 3 and 4 (resync events: {resyncs(page)}): {e}")
    assert missed == [3, 4]
    broker.produce("elog", [msg(ROOM, 5)])
    assert received(page, 1) == [5]
    assert seqs(page) == [1, 2, 3, 4, 5]
    assert resyncs(page) == []


@IOS
def test_page_drops_records_it_already_has(harness, io):
    broker, sock, page = page_away(harness, io, [1, 2])
    # A worker that is behind: it starts while Kafka is away (the page joins it then) and,
    # once Kafka is back, reads the partitions from the start, so it sends 1 and 2 again.
    # Not knowing where it stands, it answers the join after recovery_timeout_ms, whatever
    # it says (and reads nothing from Kafka for it: recovery_max_records = 0).
    broker.down()
    stack.start_worker(harness, broker, sock, name="worker2", wait_kafka=False, recovery_max_records="0",
                       recovery_timeout_ms="1000")
    page.wait("ready", timeout=60)
    broker.up()
    assert [page.wait("dropped", timeout=60)["position"] for _ in range(2)] == ["elog/0/0", "elog/0/1"]
    broker.produce("elog", [msg(ROOM, 3)])
    assert received(page, 1) == [3]
    assert seqs(page) == [1, 2, 3]


def test_page_forgets_partitions_of_a_topic_no_longer_consumed(harness):
    """After a resync the page keeps only the partitions the worker knows: one whose topic was
    removed from `topics` is refused once (the page reloads), not on every later reconnect."""
    broker, sock, page = page_away(harness, "none", [1])
    worker2 = stack.start_worker(harness, broker, sock, name="worker2", topics="elog")
    resync = page.wait("resync", timeout=60)
    assert "experiments" in resync["reason"], resync
    stop(harness, worker2)
    stack.start_worker(harness, broker, sock, name="worker3", topics="elog")
    page.wait("ready", timeout=60)  # joined worker3, with elog/0 only: nothing to refuse
    broker.produce("elog", [msg(ROOM, 2)])
    assert received(page, 1) == [2]
    assert len(resyncs(page)) == 1, resyncs(page)
