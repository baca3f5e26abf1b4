// The C/C++ boundary: where a C library (libwebsockets, librdkafka, libcurl, the C
// runtime's threads) calls back into the worker. An exception must never cross it: it
// would unwind through C frames (undefined behaviour) or hit a noexcept and terminate
// the process, dropping every connection for what is usually one failed allocation.
//
// Every such callback runs its C++ work through guarded() / guarded_or(): an exception
// (std::bad_alloc, any std::exception, anything else) is caught, logged as ONE line
//
//   ... error [PSDM-BOUNDARY] heartbeat: exception stopped at the C boundary: std::bad_alloc
//
// naming the place (`where`, a short stable string such as "heartbeat" or
// "lws psdm-socketio RECEIVE"), and turned into a failure value the caller acts on
// (close that one connection, skip that one record, try again next turn).
//
// The log line is written without allocating (logf formats into a stack buffer), so it
// works when memory has run out. Not for signal handlers: logging is not
// async-signal-safe.
//
// Thread: any.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include "base/log.h"

namespace psdm {

inline constexpr const char *kBoundaryTag = "PSDM-BOUNDARY";

namespace detail {
inline void boundary_log(const char *where, const char *what) noexcept {
    PSDM_LOG_ERROR(kBoundaryTag, "%s: exception stopped at the C boundary: %s", where ? where : "(somewhere)",
                   what ? what : "(no description)");
}
}  // namespace detail

// Runs f() and returns its result; if it throws, logs one line and returns on_failure.
// Example, an lws per-connection callback:  return guarded_or("ws RECEIVE", -1, [&] { ... });
template <class R, class F>
R guarded_or(const char *where, R on_failure, F &&f) noexcept {
    static_assert(std::is_nothrow_move_constructible_v<R>, "the failure value must be returned without throwing");
    try {
        return std::forward<F>(f)();
    } catch (const std::exception &e) {
        detail::boundary_log(where, e.what());
    } catch (...) {
        detail::boundary_log(where, "an exception that is not a std::exception");
    }
    return on_failure;
}

// Runs f() (its result, if any, is discarded). Returns true if it returned normally,
// false if it threw (then one line was logged).
template <class F>
bool guarded(const char *where, F &&f) noexcept {
    return guarded_or(where, false, [&f]() -> bool {
        std::forward<F>(f)();
        return true;
    });
}

}  // namespace psdm
