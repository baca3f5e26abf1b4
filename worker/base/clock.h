// The one clock the worker uses for timers and rate limits.
#pragma once

#include <time.h>

#include <cstdint>

namespace psdm {

// Milliseconds of CLOCK_MONOTONIC: never jumps with the wall clock.
inline int64_t monotonic_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace psdm
