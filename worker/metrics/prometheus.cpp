// The Prometheus text format 0.0.4 writer and Histogram. See prometheus.h for the contracts.
//
// References (read, not copied): the exposition format document (prometheus.io, "Text-based
// format"), the data model's name rules (prometheus.io, "Metric names and labels"), and
// client_golang's histogram (le: upper bound inclusive, cumulative buckets).
#include "metrics/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace psdm {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Integers of a double are exact up to 2^53.
constexpr double kExactIntMax = 9007199254740992.0;

void append_escaped(std::string *out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') {
            *out += "\\\\";
        } else if (c == '\n') {
            *out += "\\n";
        } else if (quote && c == '"') {
            *out += "\\\"";
        } else {
            *out += c;
        }
    }
}

const char *type_name(MetricType t) {
    switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
    }
    return "untyped";
}

}  // namespace

bool prometheus_metric_name_ok(std::string_view name) {
    if (name.empty() || !(is_name_start(name[0]) || name[0] == ':')) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return is_name_start(c) || is_digit(c) || c == ':'; });
}

bool prometheus_label_name_ok(std::string_view name) {
    if (name.empty() || !is_name_start(name[0]) || name.substr(0, 2) == "__") return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return is_name_start(c) || is_digit(c); });
}

std::string prometheus_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::trunc(v) && std::fabs(v) < kExactIntMax) return std::to_string(static_cast<int64_t>(v));
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest that reads back the same
    return std::string(buf, r.ptr);
}

std::string prometheus_value(uint64_t v) { return std::to_string(v); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
    for (size_t i = 0; i < bounds_.size(); ++i)
        if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) valid_ = false;
}

void Histogram::observe(double v) {
    if (!valid_) return;
    // The first bound >= v; NaN compares false with every bound and lands in +Inf.
    const size_t i = std::isnan(v)
                         ? bounds_.size()
                         : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    counts_[i]++;
    count_++;
    sum_ += v;
}

uint64_t Histogram::cumulative(size_t i) const {
    uint64_t n = 0;
    for (size_t b = 0; b <= i && b < counts_.size(); ++b) n += counts_[b];
    return n;
}

uint64_t Histogram::bucket_count(size_t i) const { return i < counts_.size() ? counts_[i] : 0; }

bool MetricsWriter::refuse(std::string why) {
    if (first_error_.empty()) first_error_ = std::move(why);
    return false;
}

bool MetricsWriter::family(std::string_view name, MetricType type, std::string_view help) {
    in_family_ = false;  // samples after a refused family are refused too
    const std::string n(name);
    if (!prometheus_metric_name_ok(name)) return refuse("metric name '" + n + "' is not [a-zA-Z_:][a-zA-Z0-9_:]*");
    if (type == MetricType::counter && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
        return refuse("counter '" + n + "' does not end in _total");
    if (!families_.insert(n).second) return refuse("metric family '" + n + "' written twice");
    name_ = n;
    type_ = type;
    in_family_ = true;
    out_ += "# HELP " + n + " ";
    append_escaped(&out_, help, false);
    out_ += "\n# TYPE " + n + " " + type_name(type) + "\n";
    return true;
}

bool MetricsWriter::label_list(MetricLabels labels, std::string *out) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
        if (!prometheus_label_name_ok(it->name))
            return refuse("label name '" + std::string(it->name) + "' of '" + name_ +
                          "' is not [a-zA-Z_][a-zA-Z0-9_]*");
        if (type_ == MetricType::histogram && it->name == "le")
            return refuse("histogram '" + name_ + "' has a label 'le' of its own");
        for (auto prev = labels.begin(); prev != it; ++prev)
            if (prev->name == it->name)
                return refuse("label '" + std::string(it->name) + "' of '" + name_ + "' given twice");
        if (it != labels.begin()) *out += ',';
        out->append(it->name);
        *out += "=\"";
        append_escaped(out, it->value, true);
        *out += '"';
    }
    return true;
}

bool MetricsWriter::value_sample(const std::string &value, MetricLabels labels) {
    if (!in_family_) return refuse("a sample outside a family");
    if (type_ == MetricType::histogram) return refuse("a plain sample in histogram '" + name_ + "'");
    std::string inner;
    if (!label_list(labels, &inner)) return false;
    out_ += name_ + (inner.empty() ? "" : "{" + inner + "}") + " " + value + "\n";
    return true;
}

bool MetricsWriter::sample(double value, MetricLabels labels) { return value_sample(prometheus_value(value), labels); }

bool MetricsWriter::sample(uint64_t value, MetricLabels labels) {
    return value_sample(prometheus_value(value), labels);
}

bool MetricsWriter::histogram(const Histogram &h, MetricLabels labels) {
    if (!in_family_ || type_ != MetricType::histogram) return refuse("a histogram outside a histogram family");
    if (!h.valid()) return refuse("histogram '" + name_ + "' has bounds that are not finite and increasing");
    std::string inner;
    if (!label_list(labels, &inner)) return false;
    const std::string bucket = name_ + "_bucket{" + inner + (inner.empty() ? "" : ",") + "le=\"";
    const std::string braced = inner.empty() ? "" : "{" + inner + "}";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h.bounds().size(); ++i) {
        cumulative += h.bucket_count(i);
        const std::string le = i < h.bounds().size() ? prometheus_value(h.bounds()[i]) : "+Inf";
        out_ += bucket + le + "\"} " + prometheus_value(cumulative) + "\n";
    }
    out_ += name_ + "_sum" + braced + " " + prometheus_value(h.sum()) + "\n";
    out_ += name_ + "_count" + braced + " " + prometheus_value(h.count()) + "\n";
    return true;
}

bool MetricsWriter::counter(std::string_view name, std::string_view help, uint64_t value, MetricLabels labels) {
    return family(name, MetricType::counter, help) && sample(value, labels);
}

bool MetricsWriter::gauge(std::string_view name, std::string_view help, double value, MetricLabels labels) {
    return family(name, MetricType::gauge, help) && sample(value, labels);
}

}  // namespace psdm
