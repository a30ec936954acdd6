// SPDX-License-Identifier: Apache-2.0
// The real host clock.
#include "clock.h"

#include <ctime>

namespace qga {

static int64_t readClock(clockid_t id)
{
    timespec ts{};
    clock_gettime(id, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t SystemClock::realtimeNs() const
{
    return readClock(CLOCK_REALTIME);
}

int64_t SystemClock::monotonicNs() const
{
    return readClock(CLOCK_MONOTONIC);
}

void SystemClock::sleepNs(int64_t ns) const
{
    if (ns <= 0)
        return;
    timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
    while (nanosleep(&ts, &ts) != 0) // EINTR: sleep the rest
        ;
}

const SystemClock& SystemClock::instance()
{
    static const SystemClock clock;
    return clock;
}

} // namespace qga
