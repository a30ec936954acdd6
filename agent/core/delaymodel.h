// SPDX-License-Identifier: Apache-2.0
// The per-domain model of a guest-set-time's host->guest delay, its set
// scatter and the path's quiet floor: what a sync learns (docs/design.md §7).
#pragma once

#include <array>
#include <cstdint>

namespace clocksync {

// Host→guest delay of a guest-set-time request, learned per domain from
// verified residuals. Estimate = RTT/2 + bias, the bias being the median of
// the last observations (0 before the first): under TCG single sets are
// delayed by occasional multi-millisecond outliers, which an average would
// carry into every following set.
struct DelayModel
{
    static constexpr int kWindow = 7;
    std::array<int64_t, kWindow> recentBiasNs{};
    int observations = 0;
    // Smallest get-time round trip of the last kRttWindow measurements: the
    // path's floor while it is quiet, and under sustained load the loaded
    // floor (it ages out), so that "quiet" is redefined instead of never
    // reached -- but one busy measurement does not move it.
    static constexpr int kRttWindow = 32;
    std::array<int64_t, kRttWindow> recentRttNs{};
    int rttCount = 0;
    int64_t bestRttNs = 0;
    // What a guest-set-time costs here: the median reply time of the recent
    // sets. A distribution guest's agent runs `hwclock -w` before replying
    // (up to 1 s); the time is applied before that, so the cost is no delay.
    static constexpr int kCostWindow = 5;
    std::array<int64_t, kCostWindow> recentSetCostNs{};
    int setCount = 0;
    // The coarsest step the guest clock has shown (1: none): a clock that
    // ticks is known to tick even when a measurement misses the tick.
    int64_t clockStepNs = 1;

    void noteRtt(int64_t rttNs);
    void noteSetCost(int64_t ns);
    int64_t setCostNs() const; // 0 before the first set
    // With 3 or more observations the median; with 1 or 2 the one nearest
    // zero (one cold set must not steer the next ones).
    int64_t biasNs() const;
    // Median absolute deviation of the recent biases: how far one set is
    // expected to land from the estimate. 0 until there are 3 observations.
    int64_t jitterNs() const;
    // The jitter, once a full window backs it (0 before): a fresh model's
    // jitter is inflated by cold first sets and would stop a sync hundreds of
    // microseconds short of its target.
    int64_t trustedJitterNs() const { return observations >= kWindow ? jitterNs() : 0; }
    int64_t estimate(int64_t rttNs) const;
    // A set with delay estimate d verified at residual r: the real delay was d - r.
    void learn(int64_t rttNs, int64_t estimateNs, int64_t residualNs);
    // Whether a verified residual can teach the delay: within the tolerance,
    // or within a few learned jitters. A larger one is not a delay (an agent
    // that does not apply the time, a guest NTP daemon stepping in between).
    bool plausible(int64_t residualNs, int64_t toleranceNs) const;
};

} // namespace clocksync
