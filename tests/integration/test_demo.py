"""`make demo`'s stack, started as scripts/demo.py starts it (start_demo): `/` leads
to the demo page, Apache proxies the worker's admin listener for the page
(/psdm_admin/metrics and /psdm_admin/healthz, nothing else), and the page, in
headless Chromium, fills its metrics panel while its rooms receive messages."""
import http.client
import importlib.util
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import REPO, HarnessError


def _load_demo():
    spec = importlib.util.spec_from_file_location("psdm_demo", os.path.join(REPO, "scripts", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_script = _load_demo()


@pytest.fixture
def demo(harness):
    """The demo stack without its sample producer: the tests produce what they expect."""
    d = demo_script.start_demo(harness, producer=False)
    yield d
    d.stop()


def get(url):
    """(status, content type, body text) of a GET, redirects followed; the final URL too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode(), r.url
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode(), url


def msg(room, seq):
    return json.dumps({"experiment_name": room, "seq": seq, "text": f"entry {seq}"})


def test_root_redirects_to_the_demo_page(demo):
    conn = http.client.HTTPConnection("127.0.0.1", demo.httpd.port, timeout=10)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        assert (r.status, r.getheader("Location")) == (302, f"{demo.httpd.url}/demo/")
    finally:
        conn.close()
    status, ctype, body, final = get(demo.url)
    assert (status, final) == (200, f"{demo.httpd.url}/demo/")
    assert ctype.startswith("text/html")
    assert "<h1>psdm-socket demo</h1>" in body and 'id="metrics"' in body and "/psdm_admin/metrics" in body


def test_apache_proxies_the_admin_listener_for_the_page(demo):
    status, ctype, body, _ = get(demo.metrics_url)
    assert status == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body)}
    (build,) = families["psdm_socketd_build_info"].samples
    assert build.value == 1 and build.labels["version"]
    assert families["psdm_socketd_kafka_partitions_assigned"].samples[0].value >= 1
    assert get(f"{demo.httpd.url}/psdm_admin/healthz")[::2] == (200, "ok\n")
    # Only those two paths: the rest of /psdm_admin/ is Apache's 404, not the worker's.
    status, _, body, _ = get(f"{demo.httpd.url}/psdm_admin/")
    assert status == 404 and "this port serves" not in body
    # The numbers are live: a record produced now is counted in the next scrape.
    demo.broker.produce("elog", [msg("xpptut15", 1)])

    def consumed():
        text = get(demo.metrics_url)[2]
        return any(s.name == "psdm_socketd_kafka_records_consumed_total" and s.labels == {"topic": "elog"}
                   and s.value >= 1 for f in text_string_to_metric_families(text) for s in f.samples)
    demo.worker.harness.wait_for(demo.worker.proc, consumed, "the record counted in /psdm_admin/metrics", 10)


def wait_panel(page, done, timeout=30):
    """Waits for the page's "Metrics panel: {...}" console line whose values satisfy
    done(values); returns those values. Fails at once if the panel says the metrics
    are unreachable."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(f"the metrics panel never showed what was expected; it showed {seen}")
        text = page.wait("console", timeout=left)["text"]
        if not text.startswith("Metrics panel: "):
            continue
        shown = text[len("Metrics panel: "):]
        assert shown.startswith("{"), f"the panel could not fill in: {shown}"
        values = json.loads(shown)
        seen.append(values)
        if done(values):
            return values


def test_demo_page_shows_messages_and_fills_its_metrics_panel(harness, demo):
    # The root URL, as a user types it; the page's two rooms live in iframes.
    page = harness.start_browser(demo.url, timeout_ms=90000)
    panel = wait_panel(page, lambda v: v["connections"] == 2 and v["members"] == 2)
    assert panel["health"] == "ok" and panel["rooms"] == 2 and panel["partitions"] >= 1
    assert all(isinstance(panel[k], (int, float)) for k in ("deliveries", "consumed", "sent", "lag"))
    # Both rooms joined (the panel counts memberships once the authorizer said yes).
    joined = {e["room"] for e in page.events if e["ev"] == "ready"}
    while joined != {"xpptut15", "the_global_room"}:
        joined.add(page.wait("ready", timeout=30)["room"])
    demo.broker.produce("elog", [msg("xpptut15", 7)])
    got = page.wait("msg", timeout=30)
    assert (got["type"], got["data"]["seq"]) == ("elog", 7)
    # The worker counted that delivery; the page's next polls read it through the proxy.
    demo.worker.harness.wait_for(
        demo.worker.proc,
        lambda: any(s.name == "psdm_socketd_deliveries_total" and s.value >= 1
                    for f in text_string_to_metric_families(get(demo.metrics_url)[2]) for s in f.samples),
        "the delivery counted", 10)
