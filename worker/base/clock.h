// The clocks the worker uses: monotonic for timers and rate limits, the wall clock only to
// compare with timestamps made elsewhere (Kafka records).
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

// Milliseconds since the epoch (CLOCK_REALTIME): may jump; only for other hosts' timestamps.
inline int64_t wall_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace psdm
