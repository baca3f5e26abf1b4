// Logging: see log.h for the two line forms and the journal detection.
#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace psdm {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<int> g_sink{static_cast<int>(LogSink::plain)};
const char *const kLevelNames[] = {"debug", "info", "notice", "warn", "error"};
// sd-daemon(3) prefixes, by LogLevel: SD_DEBUG, SD_INFO, SD_NOTICE, SD_WARNING, SD_ERR.
const char *const kJournalPrefixes[] = {"<7>", "<6>", "<5>", "<4>", "<3>"};
constexpr size_t kMaxLine = 2048;  // bytes, '\n' included

// A decimal number without sign that ends at `end` (':' or NUL). Returns false if malformed.
bool parse_u64(const char *s, char end, uintmax_t *out, const char **rest) {
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    char *e = nullptr;
    uintmax_t v = strtoumax(s, &e, 10);
    if (errno != 0 || *e != end) return false;
    *out = v;
    *rest = e;
    return true;
}
}  // namespace

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

bool log_level_parse(std::string_view name, LogLevel *out) {
    for (int i = 0; i < 5; ++i) {
        if (name == kLevelNames[i]) {
            *out = static_cast<LogLevel>(i);
            return true;
        }
    }
    return false;
}

bool log_journal_stream_is(const char *journal_stream, dev_t dev, ino_t ino) {
    if (!journal_stream) return false;
    uintmax_t d = 0, i = 0;
    const char *rest = nullptr;
    if (!parse_u64(journal_stream, ':', &d, &rest) || !parse_u64(rest + 1, '\0', &i, &rest)) return false;
    return d == static_cast<uintmax_t>(dev) && i == static_cast<uintmax_t>(ino);
}

LogSink log_init_sink() {
    struct stat st;
    LogSink sink = LogSink::plain;
    if (fstat(STDERR_FILENO, &st) == 0 && log_journal_stream_is(getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino))
        sink = LogSink::journal;
    log_set_sink(sink);
    return sink;
}

void log_set_sink(LogSink sink) { g_sink.store(static_cast<int>(sink)); }

LogSink log_sink() { return static_cast<LogSink>(g_sink.load()); }

size_t log_format(char *buf, size_t cap, LogSink sink, LogLevel level, const struct timespec &now, const char *tag,
                  std::string_view message) {
    if (cap < 2) return 0;
    const int lv = static_cast<int>(level) >= 0 && static_cast<int>(level) <= 4 ? static_cast<int>(level) : 4;
    const size_t room = cap - 1;  // the '\n' always fits
    size_t n = 0;
    int k;
    if (sink == LogSink::journal) {
        k = snprintf(buf, room + 1, "%s%s [%s] ", kJournalPrefixes[lv], kLevelNames[lv], tag);
    } else {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        char date[32];
        if (strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) date[0] = '\0';
        k = snprintf(buf, room + 1, "%s.%03ldZ %s [%s] ", date, now.tv_nsec / 1000000L, kLevelNames[lv], tag);
    }
    if (k > 0) n = static_cast<size_t>(k) < room ? static_cast<size_t>(k) : room;
    for (char ch : message) {
        if (n == room) break;
        buf[n++] = ch == '\n' ? ' ' : ch;
    }
    buf[n++] = '\n';
    return n;
}

void logf(LogLevel level, const char *tag, const char *fmt, ...) {
    if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;

    char message[kMaxLine];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    size_t len = k < 0 ? 0 : static_cast<size_t>(k) < sizeof message ? static_cast<size_t>(k) : sizeof message - 1;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char line[kMaxLine];
    size_t n = log_format(line, sizeof line, log_sink(), level, now, tag, std::string_view(message, len));
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}

}  // namespace psdm
