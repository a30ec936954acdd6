// SPDX-License-Identifier: Apache-2.0
// Measurement of a guest clock.
#include "measure.h"

#include <algorithm>

namespace clocksync {

using qga::ErrorKind;
using qga::Expected;

// 1 ms when every reading is a whole millisecond (three or more, not all the
// same: by chance that is one in a billion), else 1. Finer steps are below
// any target.
static int64_t readGranularity(const std::vector<qga::TimeSample>& taken)
{
    constexpr int64_t kMs = 1'000'000;
    if (taken.size() < 3 || taken.front().guestNs == taken.back().guestNs) // or a stopped clock
        return 1;
    for (const qga::TimeSample& s : taken)
        if (s.guestNs % kMs != 0)
            return 1;
    return kMs;
}

ClockSteps observedSteps(const std::vector<qga::TimeSample>& taken)
{
    ClockSteps c;
    for (std::size_t i = 1; i < taken.size(); ++i) {
        const qga::TimeSample& a = taken[i - 1];
        const qga::TimeSample& b = taken[i];
        const int64_t moved = qga::saturatingSub(b.guestNs, a.guestNs); // guest-supplied
        // Equal readings ~an RTT apart: a microsecond clock never shows them.
        if (moved == 0)
            c.standstillNs = std::max(c.standstillNs, b.hostMidpointNs() - a.hostMidpointNs());
        else if (moved > b.hostAfterNs - a.hostBeforeNs) // further than host time went
            // A tick's size, not the time between the two requests (a long
            // gap between them, the host busy elsewhere, is not a tick).
            c.jumpNs =
                std::max(c.jumpNs, moved - std::max<int64_t>(0, b.hostBeforeNs - a.hostAfterNs));
    }
    return c;
}

int64_t ClockSteps::stepNs() const
{
    if (jumpNs > 0)
        return std::max(jumpNs, standstillNs);
    // It stood still but no step was seen: at least a millisecond, at least
    // as long as it stood.
    return standstillNs > 0 ? std::max<int64_t>(1'000'000, standstillNs) : 1;
}

// A guest clock that shows no progress over this much host time is stopped
// (generous: Windows guests tick in 15.6 ms steps).
constexpr int64_t kStoppedClockSpanNs = 20'000'000;
// A clock that stood still is sampled on until it steps, over at most two
// of the coarsest ticks (and this many samples).
constexpr int64_t kStepSearchNs = 32'000'000;
constexpr int kMaxStepSamples = 200;
// A guest clock that moves further than the host between two samples by
// more than its coarsest plausible tick (Windows: 15.6 ms), or backwards,
// was stepped -- by the guest's own NTP or an operator -- not ticked. The
// samples before the step say nothing about the clock after it: the
// measurement starts again, at most this many times.
constexpr int64_t kMaxTickNs = 20'000'000;
constexpr int kMaxRestarts = 3;

// The host's realtime less its monotonic time moving by more than this over
// a sample, or since the first, says the host's clock was stepped (NTP's
// slew moves both alike; only a step, or a clock_settime, moves one).
constexpr int64_t kHostStepNs = 1'000'000;

Expected<Measurement> measure(qga::GuestAgent& agent, int samples, int64_t goodRttNs,
                              const qga::Clock* hostClock)
{
    // The host's realtime less monotonic time before each kept sample.
    std::vector<int64_t> skews;
    std::vector<qga::TimeSample> taken;
    taken.reserve(std::size_t(samples) * 3);
    int restarts = 0;
    for (int i = 0;; ++i) {
        if (i >= samples) {
            // Enough unless the clock stood still and its step has not shown
            // yet (a Windows guest's clock ticks every 1-15.6 ms: sample
            // across two ticks), or the host is busy and a quieter sample is
            // likely (up to three times as many).
            const ClockSteps steps = observedSteps(taken);
            const bool stepUnseen =
                steps.standstillNs > 0 && steps.jumpNs == 0 && i < kMaxStepSamples &&
                taken.back().hostAfterNs - taken.front().hostBeforeNs < kStepSearchNs;
            const qga::TimeSample* quietest = qga::minRttSample(taken);
            const bool quiet = goodRttNs <= 0 || quietest->rttNs() <= 2 * goodRttNs;
            if (!stepUnseen && (quiet || i >= samples * 3))
                break;
        }
        // The host's realtime less its monotonic time, read side by side
        // (not around the call: a transport's own set-up is no step).
        const auto skewNow = [hostClock] {
            return hostClock ? hostClock->realtimeNs() - hostClock->monotonicNs() : 0;
        };
        const int64_t skewBefore = skewNow();
        Expected<qga::TimeSample> s = agent.getTime();
        if (!s)
            return s.error();
        if (hostClock) {
            const int64_t skewAfter = skewNow();
            // Stepped during this sample, or since the first one kept: the
            // samples so far are on another timescale. Measured again.
            if (std::llabs(skewAfter - skewBefore) > kHostStepNs ||
                (!skews.empty() && std::llabs(skewBefore - skews.front()) > kHostStepNs)) {
                if (++restarts > kMaxRestarts)
                    return qga::makeError(ErrorKind::Internal,
                                          "host clock keeps being stepped during a measurement");
                taken.clear();
                skews.clear();
                i = -1;
                continue;
            }
            skews.push_back(skewBefore);
        }
        if (s->rttNs() < 0)
            return qga::makeError(ErrorKind::Internal, "host clock stepped during a measurement");
        if (!taken.empty()) {
            const int64_t moved = qga::saturatingSub(s->guestNs, taken.back().guestNs);
            const int64_t hostMoved = s->hostAfterNs - taken.back().hostBeforeNs;
            // Unchanged across a gap longer than any tick between two
            // requests: the guest was stopped meanwhile (paused, asleep), its
            // clock with it -- not a tick that long. Measured again from here.
            const bool stoppedBetween =
                moved == 0 && s->hostBeforeNs - taken.back().hostAfterNs > kMaxTickNs;
            if (moved < 0 || moved > hostMoved + kMaxTickNs || stoppedBetween) {
                if (++restarts > kMaxRestarts)
                    return qga::makeError(ErrorKind::BadClock,
                                          moved < 0 ? "guest clock keeps going backwards"
                                          : stoppedBetween
                                              ? "guest clock keeps stopping between samples"
                                              : "guest clock keeps jumping between samples");
                taken.assign(1, *s); // measured again from the stepped clock on
                if (!skews.empty())
                    skews.assign(1, skews.back());
                i = 0;
                continue;
            }
        }
        taken.push_back(*s);
    }
    const qga::TimeSample* best = qga::minRttSample(taken);
    if (!best)
        return qga::makeError(ErrorKind::Internal, "no samples");
    const qga::TimeSample& first = taken.front();
    const qga::TimeSample& last = taken.back();
    // The two readings were at least this far apart in host time (not the
    // span of both round trips: a busy one would fake a stopped clock).
    if (taken.size() > 1 && first.guestNs == last.guestNs &&
        last.hostBeforeNs - first.hostAfterNs >= kStoppedClockSpanNs)
        return qga::makeError(ErrorKind::BadClock, "guest clock does not advance");
    const int64_t granularity = std::max(readGranularity(taken), observedSteps(taken).stepNs());
    return Measurement{best->offsetNs(),   best->uncertaintyNs(), best->rttNs(),
                       int(taken.size()),  first.guestNs,         last.guestNs,
                       first.hostBeforeNs, last.hostAfterNs,      granularity};
}

void noBetterThanItsStep(Measurement& m, int64_t stepNs)
{
    if (stepNs > 1)
        m.uncertaintyNs = std::max(m.uncertaintyNs, stepNs);
}

} // namespace clocksync
