#include "base/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace psdm {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
const char *const kLevelNames[] = {"debug", "info", "notice", "warn", "error"};
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

void logf(LogLevel level, const char *tag, const char *fmt, ...) {
    if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;

    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof line - n, ".%03ldZ %s [%s] ", ts.tv_nsec / 1000000L,
                     kLevelNames[static_cast<int>(level)], tag);
    if (k > 0) n += static_cast<size_t>(k);

    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) n += static_cast<size_t>(k);
    if (n > sizeof line - 2) n = sizeof line - 2;  // truncated: keep the newline
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}

}  // namespace psdm
