// Logging for the worker and its tools: one line per event on stderr,
//   2026-11-26T04:40:00.123Z error [PSDM-CONFIG] /etc/psdm_socketd.conf: message
// Each call site passes a stable tag (PSDM-CONFIG, PSDM-HANDOFF, PSDM-KAFKA, ...) so
// operators can grep for it.
// Thread: any thread; lines are written with one write(2) so they never interleave.
#pragma once

#include <string_view>

namespace psdm {

enum class LogLevel { debug = 0, info, notice, warn, error };

// Lines below `level` are dropped. Default: info.
void log_set_level(LogLevel level);
LogLevel log_level();

// Parses "debug", "info", "notice", "warn" or "error". Returns false for anything else.
bool log_level_parse(std::string_view name, LogLevel *out);

void logf(LogLevel level, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace psdm

#define PSDM_LOG_DEBUG(tag, ...) ::psdm::logf(::psdm::LogLevel::debug, tag, __VA_ARGS__)
#define PSDM_LOG_INFO(tag, ...) ::psdm::logf(::psdm::LogLevel::info, tag, __VA_ARGS__)
#define PSDM_LOG_NOTICE(tag, ...) ::psdm::logf(::psdm::LogLevel::notice, tag, __VA_ARGS__)
#define PSDM_LOG_WARN(tag, ...) ::psdm::logf(::psdm::LogLevel::warn, tag, __VA_ARGS__)
#define PSDM_LOG_ERROR(tag, ...) ::psdm::logf(::psdm::LogLevel::error, tag, __VA_ARGS__)
