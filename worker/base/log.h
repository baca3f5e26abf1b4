// Logging for the worker and its tools: one line per event on stderr. Two forms:
//   plain    2026-11-26T04:40:00.123Z error [PSDM-CONFIG] /etc/psdm_socketd.conf: message
//   journal  <3>error [PSDM-CONFIG] /etc/psdm_socketd.conf: message
// The journal form is used when stderr is the systemd journal (log_init_sink): the
// sd-daemon(3) priority prefix (<3> error, <4> warn, <5> notice, <6> info, <7> debug) sets
// the entry's priority (journalctl -p), and journald adds the time itself.
// Each call site passes a stable tag (PSDM-CONFIG, PSDM-HANDOFF, PSDM-KAFKA, ...) so
// operators can grep for it. A newline inside a message is written as a space: one event
// is one line (and one journal entry).
// Thread: any thread; lines are written with one write(2) so they never interleave.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <string_view>

namespace psdm {

enum class LogLevel { debug = 0, info, notice, warn, error };

// Lines below `level` are dropped. Default: info.
void log_set_level(LogLevel level);
LogLevel log_level();

// Parses "debug", "info", "notice", "warn" or "error". Returns false for anything else.
bool log_level_parse(std::string_view name, LogLevel *out);

enum class LogSink { plain, journal };

// True if `journal_stream`, the value of JOURNAL_STREAM ("DEV:INODE", decimal, as systemd
// sets it for a service whose stderr is the journal), names the stream whose fstat(2) gives
// st_dev `dev` and st_ino `ino`. False for null or anything malformed. Pure.
bool log_journal_stream_is(const char *journal_stream, dev_t dev, ino_t ino);

// Picks the sink the systemd way: journal if JOURNAL_STREAM names stderr's stream (an
// inherited JOURNAL_STREAM with stderr redirected elsewhere does not count), else plain;
// sets it and returns it. Call once at start, before other threads log.
LogSink log_init_sink();
void log_set_sink(LogSink sink);
LogSink log_sink();

// One log line in `sink`'s form into buf (cap bytes), '\n' included: the message is cut so
// that the line fits, and newlines in it become spaces. `now` (CLOCK_REALTIME) is written
// only in the plain form. Returns the length (0 only when cap < 2). Pure.
size_t log_format(char *buf, size_t cap, LogSink sink, LogLevel level, const struct timespec &now, const char *tag,
                  std::string_view message);

void logf(LogLevel level, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace psdm

#define PSDM_LOG_DEBUG(tag, ...) ::psdm::logf(::psdm::LogLevel::debug, tag, __VA_ARGS__)
#define PSDM_LOG_INFO(tag, ...) ::psdm::logf(::psdm::LogLevel::info, tag, __VA_ARGS__)
#define PSDM_LOG_NOTICE(tag, ...) ::psdm::logf(::psdm::LogLevel::notice, tag, __VA_ARGS__)
#define PSDM_LOG_WARN(tag, ...) ::psdm::logf(::psdm::LogLevel::warn, tag, __VA_ARGS__)
#define PSDM_LOG_ERROR(tag, ...) ::psdm::logf(::psdm::LogLevel::error, tag, __VA_ARGS__)
