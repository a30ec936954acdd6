// SPDX-License-Identifier: Apache-2.0
// One measurement of a guest clock against the host clock: host time read just
// before and just after a guest-get-time round trip. Offset, RTT and
// uncertainty are derived here and nowhere else.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace qga {

// a - b, clamped to +/-INT64_MAX: a guest clock near the int64 limits (or
// libvirt's year-1677 floor) reads as an offset of ~292 years, never as
// undefined behaviour; -INT64_MIN is avoided so that llabs() stays defined.
inline int64_t saturatingSub(int64_t a, int64_t b)
{
    int64_t r = 0;
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    if (__builtin_sub_overflow(a, b, &r))
        return a < 0 ? -kMax : kMax;
    return r < -kMax ? -kMax : r;
}

struct TimeSample
{
    int64_t hostBeforeNs = 0; // host CLOCK_REALTIME when the request left
    int64_t guestNs = 0;      // guest time from the reply
    int64_t hostAfterNs = 0;  // host CLOCK_REALTIME when the reply was in

    int64_t rttNs() const { return hostAfterNs - hostBeforeNs; }
    int64_t hostMidpointNs() const { return hostBeforeNs + rttNs() / 2; }
    // guest - host: positive means the guest is ahead.
    int64_t offsetNs() const { return saturatingSub(guestNs, hostMidpointNs()); }
    // The guest read its clock somewhere inside the round trip.
    int64_t uncertaintyNs() const { return rttNs() / 2; }
};

// The sample with the smallest round trip (NTP's clock filter). Null if empty.
const TimeSample* minRttSample(const std::vector<TimeSample>& samples);

} // namespace qga
