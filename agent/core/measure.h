// SPDX-License-Identifier: Apache-2.0
// One measurement of a guest clock: K get-time samples, the min-RTT one,
// and the clock's step (docs/design.md §6, "Measurement").
#pragma once

#include "clock.h"

#include "expected.h"
#include "guestagent.h"
#include "syncresult.h"

#include <cstdint>
#include <vector>

namespace clocksync {

// What a measurement's samples show of the guest clock's step: the longest
// it stood still while host time went on, and the largest jump beyond the
// host time between two reads (a tick). Linux qemu-ga reads in
// microseconds and shows neither; Windows qemu-ga reads a clock that
// advances per tick (1-15.6 ms).
struct ClockSteps
{
    int64_t standstillNs = 0;
    int64_t jumpNs = 0;
    int64_t stepNs() const; // the step to assume: 1 when none is seen
};
ClockSteps observedSteps(const std::vector<qga::TimeSample>& taken);

// Measures K samples; min-RTT; rejects a clock that stands still or runs
// backwards. If the best round trip is still over twice goodRttNs (a busy
// host), takes up to 2K more samples; a clock that stood still without a
// step yet is sampled on until it steps (at most 32 ms). The measurement's
// granularity is the step seen (1: none).
// hostClock: read around each sample (its monotonic time) so that a step
// of the host's own clock during the measurement -- NTP, an operator --
// is seen and measured past, not taken for a round trip or for the guest
// clock's standing still (nullptr: not watched; the CLI's one-off reads).
qga::Expected<Measurement> measure(qga::GuestAgent& agent, int samples, int64_t goodRttNs = 0,
                                   const qga::Clock* hostClock = nullptr);

// What a reading may claim: no better than its clock's step (a tick-clock
// guest, Windows, reads a time up to one tick old), whatever its round trip.
// The engine's results, `offset` and `check-guest` claim it the same way.
void noBetterThanItsStep(Measurement& m, int64_t stepNs);

} // namespace clocksync
