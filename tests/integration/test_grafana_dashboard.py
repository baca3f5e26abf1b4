"""conf/grafana-dashboard.json: valid JSON that Grafana imports (a ${DS_PROMETHEUS}
datasource input, an `instance` variable), every panel querying that datasource, and
every PromQL expression naming only the worker's metric families (plus `up`), which
a live worker does export."""
import json
import os
import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness import REPO
import stack

DASHBOARD = os.path.join(REPO, "conf", "grafana-dashboard.json")

# The worker's metric families (worker/server/metrics_report.cpp), as exported.
FAMILIES = {
    "psdm_socketd_build_info", "process_start_time_seconds", "psdm_socketd_connections",
    "psdm_socketd_connections_opened_total", "psdm_socketd_connections_closed_total", "psdm_socketd_rooms",
    "psdm_socketd_room_members", "psdm_socketd_deliveries_total", "psdm_socketd_sent_bytes_total",
    "psdm_socketd_received_bytes_total", "psdm_socketd_client_backlog_bytes",
    "psdm_socketd_slow_consumers_closed_total", "psdm_socketd_memberships_revoked_total",
    "psdm_socketd_delivery_latency_seconds", "psdm_socketd_authz_checks_total",
    "psdm_socketd_authz_cache_hits_total", "psdm_socketd_authz_requests_total", "psdm_socketd_handoffs_total",
    "psdm_socketd_handoffs_refused_total", "psdm_socketd_direct_upgrades_refused_total",
    "psdm_socketd_kafka_partitions_assigned", "psdm_socketd_kafka_records_consumed_total",
    "psdm_socketd_kafka_records_routed_total", "psdm_socketd_kafka_records_skipped_total",
    "psdm_socketd_kafka_consumer_lag",
}
HISTOGRAMS = {"psdm_socketd_delivery_latency_seconds"}
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# PromQL words that are not metric names when they stand without a '(' after them.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
            "unless", "inf", "nan"}


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def data_panels(dash):
    """The panels that query (every panel but rows), rows' nested panels included."""
    for p in dash["panels"]:
        if p["type"] == "row":
            yield from p.get("panels", [])
        else:
            yield p


def expressions(dash):
    """(where, PromQL) of every panel target and every query variable."""
    for p in data_panels(dash):
        for t in p["targets"]:
            yield f"panel {p['title']!r} {t['refId']}", t["expr"]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            yield f"variable {v['name']}", q


def metric_names(expr):
    """The metric names an expression selects: what is left once strings, label
    matchers, ranges, grouping clauses and function calls are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings ("$instance", "le")
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges [5m]
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"label_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)", r"\1", e)  # Grafana's
    names = set()
    for m in re.finditer(r"(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:]|\s*\()", e):
        if m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names


def family_of(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in HISTOGRAMS:
            return name[:-len(suffix)]
    return name


def test_metric_names_are_found_in_promql():
    assert metric_names('histogram_quantile(0.5, sum by (le) (rate(psdm_socketd_delivery_latency_seconds_bucket'
                        '{instance=~"$instance"}[5m])))') == {"psdm_socketd_delivery_latency_seconds_bucket"}
    assert metric_names('time() - process_start_time_seconds{instance=~"$instance"}') == {"process_start_time_seconds"}
    assert metric_names("label_values(psdm_socketd_build_info, instance)") == {"psdm_socketd_build_info"}
    assert metric_names("sum by (topic) (rate(a_total[5m])) / on(topic) b") == {"a_total", "b"}


def test_dashboard_is_an_importable_grafana_export():
    dash = load()
    assert 30 <= dash["schemaVersion"] <= 40 and dash["title"] and dash["uid"]
    assert dash.get("id") is None  # an export: Grafana assigns the id on import
    (inp,) = dash["__inputs"]
    assert (inp["name"], inp["type"], inp["pluginId"]) == ("DS_PROMETHEUS", "datasource", "prometheus")
    (var,) = [v for v in dash["templating"]["list"] if v["name"] == "instance"]
    assert var["type"] == "query" and var["datasource"] == DS and var["multi"] and var["includeAll"]
    ids = [p["id"] for p in dash["panels"]] + [p["id"] for r in dash["panels"] for p in r.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]


def test_every_panel_queries_the_prometheus_input():
    dash = load()
    panels = list(data_panels(dash))
    assert len(panels) >= 15
    for p in panels:
        assert p.get("datasource") == DS, f"panel {p['title']!r} has no ${{DS_PROMETHEUS}} datasource"
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t.get("datasource") == DS and t["expr"].strip(), f"panel {p['title']!r} {t['refId']}"


def test_every_expression_names_only_the_workers_metric_families():
    dash = load()
    used = set()
    for where, expr in expressions(dash):
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), f"{where}: {expr}"
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        unknown = {n for n in names if family_of(n) not in FAMILIES | {"up"}}
        assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr}"
        assert 'instance=~"$instance"' in expr or expr.startswith("label_values("), f"{where}: not filtered: {expr}"
        used |= {family_of(n) for n in names}
    # The brief's panels: each of these families is on the dashboard.
    for family in ("up", "psdm_socketd_connections", "psdm_socketd_connections_closed_total", "psdm_socketd_rooms",
                   "psdm_socketd_room_members", "psdm_socketd_deliveries_total", "psdm_socketd_sent_bytes_total",
                   "psdm_socketd_delivery_latency_seconds", "psdm_socketd_kafka_records_consumed_total",
                   "psdm_socketd_kafka_records_routed_total", "psdm_socketd_kafka_records_skipped_total",
                   "psdm_socketd_kafka_consumer_lag", "psdm_socketd_client_backlog_bytes",
                   "psdm_socketd_slow_consumers_closed_total", "psdm_socketd_authz_checks_total",
                   "psdm_socketd_handoffs_total", "psdm_socketd_handoffs_refused_total"):
        assert family in used, f"no panel shows {family}"


def test_the_worker_exports_every_family_the_dashboard_uses(harness):
    """Against a live worker (through the demo stack's proxy): a renamed metric would
    leave a panel empty, and nothing else would say so."""
    _, worker, httpd, _ = stack.start(harness, admin=True)
    with urllib.request.urlopen(f"{httpd.url}{stack.ADMIN_PATH}metrics", timeout=10) as r:
        exported = {f.name for f in text_string_to_metric_families(r.read().decode())}
    # The parser names counters without _total.
    exported |= {n + "_total" for n in exported}
    used = {family_of(n) for _, expr in expressions(load()) for n in metric_names(expr)} - {"up"}
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    assert FAMILIES <= exported, f"the list above is stale: {sorted(FAMILIES - exported)}"
