"""The browser client (js/websocket_client.js) in headless Chromium, loaded from
Apache like an application page, against the whole stack."""
import json

import pytest

import stack


def msg(room, seq):
    return json.dumps({"experiment_name": room, "seq": seq, "text": f"entry {seq}"})


@pytest.mark.parametrize("io", ["none", "4", "2"], ids=["native", "socket.io-4", "socket.io-2"])
def test_page_receives_kafka_messages_as_custom_events(harness, io):
    broker, worker, httpd, _ = stack.start(harness)
    url = f"{httpd.url}/demo/room.html?experiment=xpptut15" + ("" if io == "none" else f"&io={io}")
    page = harness.start_browser(url, count=2)
    assert page.wait("ready", timeout=30)["room"] == "xpptut15"
    broker.produce("elog", [msg("xpptut15", 1), msg("otherexp", 99), msg("xpptut15", 2)])
    page.wait("done")
    got = [(e["type"], e["data"]["seq"]) for e in page.events if e["ev"] == "msg"]
    assert got == [("elog", 1), ("elog", 2)]
    # The client used the transport it should: native Engine.IO when the page has no io.
    assert worker.wait_log(r"client \d+ connected \(user 'demo', Engine.IO v(\d)\)").group(1) == \
        ("3" if io == "2" else "4")


def test_global_room_page_gets_experiments_topic(harness):
    broker, worker, httpd, _ = stack.start(harness)
    page = harness.start_browser(f"{httpd.url}/demo/room.html", count=1)
    assert page.wait("ready", timeout=30)["room"] == "the_global_room"
    broker.produce("elog", [msg("xpptut15", 1)])
    broker.produce("experiments", [json.dumps({"name": "newexp", "seq": 2})])
    page.wait("done")
    got = [e for e in page.events if e["ev"] == "msg"]
    assert [(e["type"], e["data"]["seq"]) for e in got] == [("experiments", 2)]


def test_page_reconnects_after_the_worker_restarts(harness):
    broker, worker, httpd, sock = stack.start(harness)
    page = harness.start_browser(f"{httpd.url}/demo/room.html?experiment=xpptut15", count=1, timeout_ms=90000)
    page.wait("ready", timeout=30)
    worker.proc.stop()  # the worker goes away with the page's connection
    harness.procs.remove(worker.proc)
    stack.start_worker(harness, broker, sock, name="worker2")
    page.wait("ready", timeout=60)  # reconnected with backoff and joined again, no reload
    broker.produce("elog", [msg("xpptut15", 7)])
    page.wait("done")
    assert [e["data"]["seq"] for e in page.events if e["ev"] == "msg"] == [7]


def test_page_of_an_experiment_the_user_may_not_read_receives_nothing(harness):
    broker, worker, httpd, _ = stack.start(harness, authz=stack.demo_acl(harness))
    secret = harness.start_browser(f"{httpd.url}/demo/room.html?experiment=secret_exp", name="browser-secret")
    allowed = harness.start_browser(f"{httpd.url}/demo/room.html?experiment=xpptut15", count=2, name="browser-ok")
    assert secret.wait("refused", timeout=30)["room"] == "secret_exp"
    allowed.wait("ready", timeout=30)
    worker.wait_log(r"user 'demo' may not join room 'secret_exp'")
    # Messages for both rooms, in one partition: when the allowed page has its last
    # one, the secret one (produced before it) has been routed too.
    broker.produce("elog", [msg("secret_exp", 1), msg("xpptut15", 2), msg("secret_exp", 3), msg("xpptut15", 4)])
    allowed.wait("done")
    assert [e["data"]["seq"] for e in allowed.events if e["ev"] == "msg"] == [2, 4]
    assert not [e for e in secret.events if e["ev"] == "msg"]
    secret.proc.stop()
    assert not [line for line in secret.proc.popen.stdout if '"ev": "msg"' in line]
