// The Prometheus text exposition format, version 0.0.4 (what GET /metrics answers, with
// Content-Type kPrometheusContentType), and a histogram to feed it. Pure: no I/O, no lws, no
// logging.
//
// Format (https://prometheus.io/docs/instrumenting/exposition_formats/): each metric family is
//   # HELP <name> <help text, '\' and newline escaped as \\ and \n>
//   # TYPE <name> counter|gauge|histogram
// followed by its samples, one per line, all together:
//   <name>{<label>="<value, '\', '"' and newline escaped>",...} <value>
// A histogram family <name> has, per label set, <name>_bucket{...,le="<bound>"} lines with
// cumulative counts, the last one le="+Inf" (= the count), then <name>_sum and <name>_count.
// Values: an integer below 2^53 in magnitude is printed as one ("1000000", never "1e+06"), a
// uint64_t exactly; other values in the shortest form that reads back to the same double;
// "+Inf", "-Inf" and "NaN" as Prometheus spells them.
//
// Names: a metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]*
// and does not start with "__" (reserved); a counter's name ends in "_total"; a histogram's
// samples may not have a label "le"; within a sample, no label is given twice; a family name is
// used once per exposition. A call that breaks a rule writes nothing and is recorded
// (MetricsWriter::ok() false, first_error() says which), so one bad metric never breaks the
// format of the rest.
//
// Thread: none shared; a MetricsWriter or Histogram belongs to one thread (the event loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace psdm {

// The Content-Type of the format.
constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

bool prometheus_metric_name_ok(std::string_view name);  // [a-zA-Z_:][a-zA-Z0-9_:]*
bool prometheus_label_name_ok(std::string_view name);   // [a-zA-Z_][a-zA-Z0-9_]*, not "__..."

// A sample value as the format spells it (see above).
std::string prometheus_value(double v);
std::string prometheus_value(uint64_t v);

// Counts of observations in fixed buckets: bucket i holds the values <= bounds[i] (and above
// bounds[i - 1]); one more bucket, +Inf, holds the rest. A NaN is counted in +Inf and makes the
// sum NaN (as client_golang does): callers observe measured durations and sizes, never NaN.
class Histogram {
 public:
    // `bounds`: finite and strictly increasing (else the histogram is invalid: valid() is false,
    // observe() does nothing and MetricsWriter refuses it). +Inf is implicit, not listed.
    explicit Histogram(std::vector<double> bounds);

    // Counts `v` in its bucket and adds it to the sum. O(log buckets), no allocation.
    void observe(double v);

    bool valid() const { return valid_; }
    const std::vector<double> &bounds() const { return bounds_; }
    // Observations <= bounds()[i], for i < bounds().size(); i == bounds().size() is +Inf: count().
    // O(i).
    uint64_t cumulative(size_t i) const;
    // Observations in bucket i alone: in (bounds()[i - 1], bounds()[i]]; the last is +Inf's.
    uint64_t bucket_count(size_t i) const;
    uint64_t count() const { return count_; }
    double sum() const { return sum_; }

 private:
    std::vector<double> bounds_;
    std::vector<uint64_t> counts_;  // per bucket (not cumulative), bounds_.size() + 1
    uint64_t count_ = 0;
    double sum_ = 0;
    bool valid_ = true;
};

// One label of a sample: views that must live until the call returns.
struct MetricLabel {
    std::string_view name;
    std::string_view value;
};
using MetricLabels = std::initializer_list<MetricLabel>;

enum class MetricType { counter, gauge, histogram };

// Writes an exposition into a string: family(), then that family's samples, then the next
// family. Each call returns false (writing nothing) when it breaks a rule of the header.
class MetricsWriter {
 public:
    // Starts a family: its # HELP and # TYPE lines.
    bool family(std::string_view name, MetricType type, std::string_view help);
    // A sample of the current counter or gauge family.
    bool sample(double value, MetricLabels labels = {});
    bool sample(uint64_t value, MetricLabels labels = {});
    // The samples of `h` (buckets, sum, count) in the current histogram family.
    bool histogram(const Histogram &h, MetricLabels labels = {});

    // Shorthands: a family of one sample.
    bool counter(std::string_view name, std::string_view help, uint64_t value, MetricLabels labels = {});
    bool gauge(std::string_view name, std::string_view help, double value, MetricLabels labels = {});

    bool ok() const { return first_error_.empty(); }
    const std::string &first_error() const { return first_error_; }  // "" when ok()
    const std::string &text() const { return out_; }
    std::string take() { return std::move(out_); }  // the exposition; the writer is spent

 private:
    bool refuse(std::string why);
    // Appends `a="x",b="y"` (checked, escaped) to *out; false when a label is bad.
    bool label_list(MetricLabels labels, std::string *out);
    bool value_sample(const std::string &value, MetricLabels labels);

    std::string out_;
    std::string name_;  // the current family
    MetricType type_ = MetricType::gauge;
    bool in_family_ = false;
    std::unordered_set<std::string> families_;
    std::string first_error_;
};

}  // namespace psdm
