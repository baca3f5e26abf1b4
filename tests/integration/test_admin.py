"""psdm_socketd's admin listener (admin_listen): GET /metrics in the Prometheus text
format (parsed with Debian's python3-prometheus-client), GET /healthz (200 once Kafka has
partitions assigned, 503 with a reason before), the answers to everything else, its
connection limits, and its separation from the clients' port."""
import json
import socket

from prometheus_client.parser import text_string_to_metric_families

from harness import worker_config
from rawws import RawEio
from test_worker import base_config, msg

ADMIN_RX = r"admin listener on 127\.0\.0\.1:(\d+) "


def admin_port(worker):
    return int(worker.wait_log(ADMIN_RX, what="the admin listener").group(1))


def start(harness):
    """A worker with a broker, its partitions assigned; returns (broker, worker, admin port)."""
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker = harness.start_worker(base_config(broker, admin_listen="127.0.0.1:0"))
    return broker, worker, admin_port(worker)


def start_without_kafka(harness):
    """A worker whose broker is unreachable: it serves, but never gets partitions."""
    keys = dict(kafka__bootstrap__servers="127.0.0.1:1", topics="elog", authz="allow-all",
                admin_listen="127.0.0.1:0")
    worker = harness.start_worker(worker_config(**keys), wait_kafka=False)
    return worker, admin_port(worker)


def exchange(port, request, timeout=10):
    """Sends the raw request bytes, reads until the server closes; returns
    (status line, {lower-case header: value}, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def request(port, method="GET", path="/metrics"):
    return exchange(port, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())


def scrape(port):
    """{family name: family} of GET /metrics, checking the answer's head on the way."""
    status, headers, body = request(port)
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families, name, **labels):
    """The value of the sample `name` (with exactly these labels) in a scrape."""
    for f in families.values():
        for s in f.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise AssertionError(f"no sample {name}{labels} in {sorted(families)}")


def total(families, name, **labels):
    """The sum of the samples `name` whose labels include these."""
    found = [s.value for f in families.values() for s in f.samples
             if s.name == name and labels.items() <= s.labels.items()]
    assert found, f"no sample {name}{labels} in {sorted(families)}"
    return sum(found)


def test_metrics_show_connections_and_deliveries(harness):
    broker, worker, port = start(harness)
    m = scrape(port)
    assert m["psdm_socketd_connections"].type == "gauge"
    assert m["psdm_socketd_deliveries"].type == "counter"  # the parser names counters without _total
    assert total(m, "psdm_socketd_connections") == 0
    assert value(m, "psdm_socketd_kafka_partitions_assigned") >= 1
    (build,) = m["psdm_socketd_build_info"].samples
    assert build.value == 1 and build.labels["version"]
    assert value(m, "process_start_time_seconds") > 1.7e9
    assert value(m, "psdm_socketd_authz_checks_total", provider="allow-all", result="allowed") == 0

    raw = RawEio(worker.url)
    try:
        raw.connect_ns()
        raw.send('42/psdm_ws,1["join","xpptut15"]')
        assert raw.next_text() == "43/psdm_ws,1[]"
        m = scrape(port)
        assert value(m, "psdm_socketd_connections", via="direct", eio="4") == 1
        assert total(m, "psdm_socketd_connections") == 1
        assert value(m, "psdm_socketd_connections_opened_total") == 1
        assert value(m, "psdm_socketd_authz_checks_total", provider="allow-all", result="allowed") == 1
        assert (value(m, "psdm_socketd_rooms"), value(m, "psdm_socketd_room_members")) == (1, 1)
        broker.produce("elog", [msg("xpptut15", 1)])
        got = json.loads(raw.next_text()[len("42/psdm_ws,"):])
        assert got[1]["seq"] == 1
        m = scrape(port)
        assert value(m, "psdm_socketd_kafka_records_consumed_total", topic="elog") == 1
        assert value(m, "psdm_socketd_kafka_records_routed_total", topic="elog") == 1
        assert value(m, "psdm_socketd_kafka_records_skipped_total", topic="elog", reason="not_json") == 0
        assert value(m, "psdm_socketd_deliveries_total") == 1
        assert value(m, "psdm_socketd_sent_bytes_total") > len(got) and value(m, "psdm_socketd_received_bytes_total") > 0
        assert value(m, "psdm_socketd_client_backlog_bytes") == 0
        # The record went out in one io_uring batch (fanout_sends' default), the Engine.IO
        # open packet, the namespace's connect and the join's ack each with a send().
        uring = not worker.log_text().count("fanout_sends = io_uring, but")
        assert value(m, "psdm_socketd_immediate_writes_total", via="io_uring") == (1 if uring else 0)
        assert value(m, "psdm_socketd_io_uring_submits_total") == (1 if uring else 0)
        assert value(m, "psdm_socketd_immediate_writes_total", via="send") == (3 if uring else 4)
        # The record's first write was measured once, against its Kafka timestamp.
        assert value(m, "psdm_socketd_delivery_latency_seconds_count") == 1
        assert value(m, "psdm_socketd_delivery_latency_seconds_bucket", le="+Inf") == 1
        assert value(m, "psdm_socketd_kafka_consumer_lag", topic="elog", partition="0") == 0
    finally:
        raw.close()
    harness.wait_for(worker.proc, lambda: total(scrape(port), "psdm_socketd_connections") == 0,
                     "the closed connection to leave the gauge", 10)
    m = scrape(port)
    assert value(m, "psdm_socketd_connections_opened_total") == 1
    assert value(m, "psdm_socketd_connections_closed_total", reason="client_close") == 1
    assert total(m, "psdm_socketd_connections_closed_total") == 1


def test_healthz_is_ok_once_partitions_are_assigned(harness):
    broker, worker, port = start(harness)  # returns once the worker logged its assignment
    status, headers, body = request(port, path="/healthz")
    assert (status, body) == ("HTTP/1.1 200 OK", b"ok\n")
    assert headers["content-type"] == "text/plain" and headers["connection"] == "close"
    # HEAD: the same head, no body.
    status, headers, body = request(port, "HEAD", "/healthz")
    assert (status, headers["content-length"], body) == ("HTTP/1.1 200 OK", "3", b"")
    status, headers, body = request(port, "HEAD", "/metrics")
    assert status == "HTTP/1.1 200 OK" and int(headers["content-length"]) > 0 and body == b""


def test_healthz_is_503_without_kafka(harness):
    worker, port = start_without_kafka(harness)
    status, headers, body = request(port, path="/healthz?verbose=1")  # a query is ignored
    assert (status, body) == ("HTTP/1.1 503 Service Unavailable", b"kafka: no partitions assigned\n")
    assert value(scrape(port), "psdm_socketd_kafka_partitions_assigned") == 0


ANSWERS = [
    # (request bytes, status line, header that must be there, part of the body)
    (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 405 Method Not Allowed",
     ("allow", "GET, HEAD"), b"use GET"),
    (b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed", ("allow", "GET, HEAD"), b""),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found", ("connection", "close"), b"/metrics"),
    (b"GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found", ("connection", "close"), b""),
    (b"POST /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found", ("connection", "close"), b""),
    (b"garbage\r\n\r\n", "HTTP/1.1 400 Bad Request", ("connection", "close"), b"Malformed HTTP request"),
    (b"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request", ("connection", "close"), b""),
    (b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n", "HTTP/1.1 400 Bad Request", ("connection", "close"), b""),
    (b"GET /" + b"m" * 3000 + b" HTTP/1.1\r\n\r\n", "HTTP/1.1 414 URI Too Long", ("connection", "close"), b""),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 5000 + b"\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large",
     ("connection", "close"), b""),
    # The admin port never upgrades to WebSocket.
    (b"GET /lgbk_socketio/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
     "HTTP/1.1 404 Not Found", ("connection", "close"), b""),
]


def test_everything_else_is_refused(harness):
    worker, port = start_without_kafka(harness)
    for req, status_line, (header, expected), body_part in ANSWERS:
        status, headers, body = exchange(port, req)
        assert status == status_line, req[:60]
        assert headers.get(header) == expected, (req[:60], headers)
        assert body_part in body, (req[:60], body)
    worker.wait_log(r"\[PSDM-ADMIN\] admin request POST /metrics: method not allowed; answered 405")
    worker.wait_log(r"\[PSDM-ADMIN\] admin request refused: malformed request: .*answered 400")
    # The clients' port does not serve the admin paths.
    for path in ("/metrics", "/healthz"):
        status, headers, body = request(worker.port, path=path)
        assert status == "HTTP/1.1 404 Not Found", path


def test_at_most_16_connections_and_idle_ones_are_cut(harness):
    worker, port = start_without_kafka(harness)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
    try:
        # The 17th waits in the backlog: it is accepted (and answered) only once one of the
        # 16 idle ones, which never send a request, has been closed by the worker after 5 s.
        status, _, body = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=30)
        assert status == "HTTP/1.1 503 Service Unavailable"
        closed_before = 0
        for s in idle:
            s.setblocking(False)
            try:
                closed_before += s.recv(1) == b""
            except BlockingIOError:  # still open: its own 5 s are not over yet
                pass
        assert closed_before >= 1
        for s in idle:  # every idle one is closed, without an answer
            s.settimeout(10)
            assert s.recv(1) == b""
    finally:
        for s in idle:
            s.close()
    worker.wait_log(r"closed an admin connection of client 127\.0\.0\.1: no complete request within 5 s")
