// Unit tests for worker/metrics/prometheus: the text format 0.0.4 writer (HELP/TYPE lines,
// samples, labels and their escaping, value spelling, histograms) and the name rules it
// enforces, and Histogram (bucket edges, cumulative counts, sum, invalid bounds).
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <cmath>
#include <limits>
#include <string>

#include "metrics/prometheus.h"

using psdm::Histogram;
using psdm::MetricsWriter;
using psdm::MetricType;
using psdm::prometheus_value;

namespace {

void expect_text(const MetricsWriter &w, const char *want) {
    if (w.text() != want) fail_msg("got:\n%s\nwant:\n%s", w.text().c_str(), want);
}

void test_values(void **) {
    struct {
        double v;
        const char *want;
    } const cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-3, "-3"},
        {1e6, "1000000"},                          // never 1e+06
        {9007199254740991.0, "9007199254740991"},  // 2^53 - 1: still an exact integer
        {0.5, "0.5"},
        {0.1, "0.1"},  // shortest round trip, not 0.10000000000000001
        {2.5e-7, "2.5e-07"},
        {1.0 / 3, "0.3333333333333333"},
        {std::numeric_limits<double>::infinity(), "+Inf"},
        {-std::numeric_limits<double>::infinity(), "-Inf"},
        {std::nan(""), "NaN"},
    };
    for (const auto &c : cases)
        if (prometheus_value(c.v) != c.want)
            fail_msg("%.17g: got '%s', want '%s'", c.v, prometheus_value(c.v).c_str(), c.want);
    // Past 2^53 a double is printed in the shortest form that reads back the same.
    assert_true(std::stod(prometheus_value(1e300)) == 1e300);
    // A uint64_t counter is exact over the whole range.
    assert_string_equal(prometheus_value(uint64_t{18446744073709551615u}).c_str(), "18446744073709551615");
    assert_string_equal(prometheus_value(uint64_t{9007199254740993u}).c_str(), "9007199254740993");
}

void test_names(void **) {
    for (const char *ok : {"a", "_a", ":a", "a_b:c9", "psdm_socketd_connections", "A"})
        if (!psdm::prometheus_metric_name_ok(ok)) fail_msg("metric name '%s' refused", ok);
    for (const char *bad : {"", "9a", "a-b", "a b", "a.b", "é"})
        if (psdm::prometheus_metric_name_ok(bad)) fail_msg("metric name '%s' accepted", bad);
    for (const char *ok : {"a", "_a", "provider", "a9_b"})
        if (!psdm::prometheus_label_name_ok(ok)) fail_msg("label name '%s' refused", ok);
    for (const char *bad : {"", "9a", "a:b", "__name__", "__x", "a-b"})
        if (psdm::prometheus_label_name_ok(bad)) fail_msg("label name '%s' accepted", bad);
}

void test_counter_and_gauge(void **) {
    MetricsWriter w;
    assert_true(w.counter("x_requests_total", "Requests served.", uint64_t{1000000}));
    assert_true(w.family("x_connections", MetricType::gauge, "Open connections."));
    assert_true(w.sample(3.0, {{"kind", "direct"}}));
    assert_true(w.sample(uint64_t{4}, {{"kind", "handoff"}, {"tls", "no"}}));
    assert_true(w.gauge("x_build_info", "Build.", 1, {{"version", "1.2.3"}}));
    assert_true(w.ok());
    expect_text(w,
                "# HELP x_requests_total Requests served.\n"
                "# TYPE x_requests_total counter\n"
                "x_requests_total 1000000\n"
                "# HELP x_connections Open connections.\n"
                "# TYPE x_connections gauge\n"
                "x_connections{kind=\"direct\"} 3\n"
                "x_connections{kind=\"handoff\",tls=\"no\"} 4\n"
                "# HELP x_build_info Build.\n"
                "# TYPE x_build_info gauge\n"
                "x_build_info{version=\"1.2.3\"} 1\n");
}

void test_escaping(void **) {
    MetricsWriter w;
    // Label values: backslash, quote, newline. HELP: backslash and newline (a quote stays).
    assert_true(w.family("x", MetricType::gauge, "a \\ b\nc \"d\""));
    assert_true(w.sample(1.0, {{"v", "back\\slash \"quoted\"\nnext"}}));
    expect_text(w,
                "# HELP x a \\\\ b\\nc \"d\"\n"
                "# TYPE x gauge\n"
                "x{v=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1\n");
    // UTF-8 passes through unchanged.
    MetricsWriter u;
    assert_true(u.gauge("y", "caf\xc3\xa9", 2, {{"who", "\xc3\xa9t\xc3\xa9"}}));
    expect_text(u, "# HELP y caf\xc3\xa9\n# TYPE y gauge\ny{who=\"\xc3\xa9t\xc3\xa9\"} 2\n");
}

void test_refusals(void **) {
    struct {
        bool (*call)(MetricsWriter &);
        const char *error;
    } const cases[] = {
        {[](MetricsWriter &w) { return w.counter("x_requests", "h", uint64_t{1}); }, "does not end in _total"},
        {[](MetricsWriter &w) { return w.gauge("x-y", "h", 1); }, "is not [a-zA-Z_:]"},
        {[](MetricsWriter &w) {
             return w.gauge("x", "h", 1, {{"bad-label", "v"}});
         },
         "label name 'bad-label'"},
        {[](MetricsWriter &w) {
             return w.gauge("x", "h", 1, {{"__name__", "v"}});
         },
         "label name '__name__'"},
        {[](MetricsWriter &w) {
             return w.gauge("x", "h", 1, {{"a", "1"}, {"a", "2"}});
         },
         "label 'a' of 'x' given twice"},
        {[](MetricsWriter &w) { return w.sample(1.0); }, "a sample outside a family"},
        {[](MetricsWriter &w) { return w.gauge("x", "h", 1) && w.gauge("x", "h", 2); }, "'x' written twice"},
        {[](MetricsWriter &w) { return w.family("h", MetricType::histogram, "h") && w.sample(1.0); },
         "a plain sample in histogram 'h'"},
        {[](MetricsWriter &w) { return w.family("g", MetricType::gauge, "h") && w.histogram(Histogram({1})); },
         "outside a histogram family"},
        {[](MetricsWriter &w) {
             return w.family("h", MetricType::histogram, "h") && w.histogram(Histogram({1}), {{"le", "x"}});
         },
         "label 'le' of its own"},
        {[](MetricsWriter &w) {
             return w.family("h", MetricType::histogram, "h") && w.histogram(Histogram({2, 1}));
         },
         "not finite and increasing"},
        // After a refused family, its samples are refused too (they would join the previous one).
        {[](MetricsWriter &w) {
             return w.gauge("ok", "h", 1) && (w.family("9", MetricType::gauge, "h") || true) && w.sample(2.0);
         },
         "is not [a-zA-Z_:]"},
    };
    for (const auto &c : cases) {
        MetricsWriter w;
        if (c.call(w)) fail_msg("accepted; wanted '%s'", c.error);
        if (w.ok() || w.first_error().find(c.error) == std::string::npos)
            fail_msg("error '%s', wanted '%s'", w.first_error().c_str(), c.error);
        // Nothing of the refused call was written: every line written is a whole HELP, TYPE or
        // sample line of an accepted call.
        if (w.text().find("x-y") != std::string::npos || w.text().find("bad-label") != std::string::npos ||
            w.text().find("\"2\"") != std::string::npos || w.text().find(" 2\n") != std::string::npos)
            fail_msg("a refused call wrote: %s", w.text().c_str());
    }
    // The first error is kept; later good calls still write.
    MetricsWriter w;
    assert_false(w.gauge("a-b", "h", 1));
    assert_false(w.gauge("c-d", "h", 1));
    assert_true(w.gauge("e", "h", 1));
    assert_true(w.first_error().find("'a-b'") != std::string::npos);
    expect_text(w, "# HELP e h\n# TYPE e gauge\ne 1\n");
}

void test_histogram(void **) {
    Histogram h({0.005, 0.1, 1, 10});
    assert_true(h.valid());
    for (double v : {0.001, 0.005, 0.0050001, 0.1, 0.5, 1.0, 7.0, 10.0, 11.0, 1e9}) h.observe(v);
    // Upper bounds are inclusive: 0.005 is in le="0.005", 0.0050001 in le="0.1".
    assert_int_equal(h.bucket_count(0), 2);
    assert_int_equal(h.bucket_count(1), 2);
    assert_int_equal(h.bucket_count(2), 2);
    assert_int_equal(h.bucket_count(3), 2);
    assert_int_equal(h.bucket_count(4), 2);
    assert_int_equal(h.cumulative(0), 2);
    assert_int_equal(h.cumulative(2), 6);
    assert_int_equal(h.cumulative(4), 10);
    assert_int_equal(h.count(), 10);
    assert_true(std::fabs(h.sum() - (0.001 + 0.005 + 0.0050001 + 0.1 + 0.5 + 1 + 7 + 10 + 11 + 1e9)) < 1e-6);

    MetricsWriter w;
    assert_true(w.family("x_latency_seconds", MetricType::histogram, "Latency."));
    Histogram small({0.5, 2});
    small.observe(0.25);
    small.observe(0.75);
    small.observe(3);
    assert_true(w.histogram(small, {{"room", "a"}}));
    assert_true(w.histogram(Histogram({0.5, 2})));
    expect_text(w,
                "# HELP x_latency_seconds Latency.\n"
                "# TYPE x_latency_seconds histogram\n"
                "x_latency_seconds_bucket{room=\"a\",le=\"0.5\"} 1\n"
                "x_latency_seconds_bucket{room=\"a\",le=\"2\"} 2\n"
                "x_latency_seconds_bucket{room=\"a\",le=\"+Inf\"} 3\n"
                "x_latency_seconds_sum{room=\"a\"} 4\n"
                "x_latency_seconds_count{room=\"a\"} 3\n"
                "x_latency_seconds_bucket{le=\"0.5\"} 0\n"
                "x_latency_seconds_bucket{le=\"2\"} 0\n"
                "x_latency_seconds_bucket{le=\"+Inf\"} 0\n"
                "x_latency_seconds_sum 0\n"
                "x_latency_seconds_count 0\n");
}

void test_histogram_edges(void **) {
    // No bounds: one +Inf bucket.
    Histogram none({});
    none.observe(-1);
    assert_int_equal(none.cumulative(0), 1);
    // NaN and +Inf land in +Inf; -Inf in the first bucket.
    Histogram h({1});
    h.observe(std::nan(""));
    h.observe(std::numeric_limits<double>::infinity());
    h.observe(-std::numeric_limits<double>::infinity());
    assert_int_equal(h.bucket_count(0), 1);
    assert_int_equal(h.bucket_count(1), 2);
    assert_true(std::isnan(h.sum()));
    // Invalid bounds: not increasing, repeated, not finite. Observing does nothing.
    for (const auto &bounds :
         {std::vector<double>{2, 1}, std::vector<double>{1, 1},
          std::vector<double>{1, std::numeric_limits<double>::infinity()}, std::vector<double>{std::nan("")}}) {
        Histogram bad(bounds);
        assert_false(bad.valid());
        bad.observe(1);
        assert_int_equal(bad.count(), 0);
    }
    // Many buckets: each observation finds its bucket (binary search) exactly.
    std::vector<double> bounds;
    for (int i = 1; i <= 1000; ++i) bounds.push_back(i);
    Histogram big(bounds);
    for (int i = 0; i < 1000; ++i) big.observe(i + 0.5);  // one in each bucket 1..1000 (le=i+1)
    for (size_t i = 0; i < 1000; ++i) assert_int_equal(big.bucket_count(i), 1);
    assert_int_equal(big.bucket_count(1000), 0);
    assert_int_equal(big.cumulative(499), 500);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_edges),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
