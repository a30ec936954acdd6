// SPDX-License-Identifier: Apache-2.0
// One measurement of a guest clock against the host clock: host time read just
// before and just after a guest-get-time round trip. Offset, RTT and
// uncertainty are derived here and nowhere else.
#pragma once

#include <cstdint>
#include <vector>

namespace qga {

struct TimeSample
{
    int64_t hostBeforeNs = 0; // host CLOCK_REALTIME when the request left
    int64_t guestNs = 0;      // guest time from the reply
    int64_t hostAfterNs = 0;  // host CLOCK_REALTIME when the reply was in

    int64_t rttNs() const { return hostAfterNs - hostBeforeNs; }
    int64_t hostMidpointNs() const { return hostBeforeNs + rttNs() / 2; }
    // guest - host: positive means the guest is ahead.
    int64_t offsetNs() const { return guestNs - hostMidpointNs(); }
    // The guest read its clock somewhere inside the round trip.
    int64_t uncertaintyNs() const { return rttNs() / 2; }
};

// The sample with the smallest round trip (NTP's clock filter). Null if empty.
const TimeSample* minRttSample(const std::vector<TimeSample>& samples);

} // namespace qga
