// SPDX-License-Identifier: Apache-2.0
// The pure decisions of a sync.
#include "syncrules.h"

#include <algorithm>
#include <cstdlib>

namespace clocksync {

constexpr int64_t kRtcResolutionNs = 1'000'000'000;

Limits effectiveLimits(const SyncPolicy& p, bool rtc, int64_t granularityNs)
{
    if (rtc) {
        const int64_t tol = std::max(p.toleranceNs, kRtcResolutionNs);
        return {tol, tol, kRtcResolutionNs};
    }
    return {std::max(p.targetNs, granularityNs), std::max(p.toleranceNs, granularityNs),
            granularityNs};
}

bool backwardStepRefused(const SyncPolicy& p, Trigger t, const Measurement& m)
{
    const bool hostSide = t == Trigger::Reconcile || t == Trigger::HostClockStep;
    return hostSide && p.maxBackwardStepNs > 0 && m.offsetNs > p.maxBackwardStepNs;
}

bool inTolerance(const Measurement& m, const Limits& l)
{
    return std::llabs(m.offsetNs) <= l.toleranceNs;
}

bool closeEnough(const Measurement& m, const Limits& l)
{
    return inTolerance(m, l) && std::llabs(m.offsetNs) <= 4 * l.targetNs;
}

std::optional<Outcome> verdict(const Measurement& v, const Limits& l, bool rtc, int64_t jitterNs,
                               std::string& note)
{
    const int64_t a = std::llabs(v.offsetNs);
    if (rtc) {
        if (a > l.toleranceNs)
            return std::nullopt;
        note = "RTC resolution: whole seconds";
        return Outcome::Approximate;
    }
    if (a <= l.targetNs) {
        if (a + v.uncertaintyNs <= l.toleranceNs)
            return Outcome::Synced;
        note = "within target, but the verify's uncertainty (+/-" +
               formatOffset(v.uncertaintyNs).substr(1) + ") reaches past the tolerance";
        return Outcome::Approximate;
    }
    // Another set is expected to land about `jitter` from where we aim: if
    // we are already that close (and within tolerance), a further set is as
    // likely to make it worse as better. Stop, and say so.
    if (a <= jitterNs && a <= l.toleranceNs) {
        note = "stopped at the set jitter (" + formatOffset(jitterNs).substr(1) + ")";
        return Outcome::Approximate;
    }
    return std::nullopt;
}

bool quietPath(const Measurement& m, const DelayModel& d)
{
    return d.bestRttNs <= 0 || m.rttNs <= 2 * d.bestRttNs;
}

bool shouldLearn(const Measurement& v, const DelayModel& d, const Limits& l)
{
    // A coarse clock's residual within one step is quantisation, not delay.
    const bool quantised = l.granularityNs > 1 && std::llabs(v.offsetNs) <= l.granularityNs;
    return quietPath(v, d) && d.plausible(v.offsetNs, l.toleranceNs) && !quantised;
}

constexpr int64_t kExpensiveSetNs = 100'000'000;

int samplesFor(const SyncPolicy& p, const DelayModel& d)
{
    return d.setCostNs() >= kExpensiveSetNs ? 3 * p.samples : p.samples;
}

int64_t stopJitterNs(const DelayModel& d)
{
    return d.setCostNs() >= kExpensiveSetNs ? d.jitterNs() : d.trustedJitterNs();
}

std::optional<SyncStop> beforeSetting(const SyncPolicy& p, Trigger t, const Measurement& m,
                                      const Limits& l)
{
    // In sync only if it is so whatever the reading's uncertainty: +0.9 ms
    // +/-5 ms may well be 5 ms off.
    if (inTolerance(m, l) && std::llabs(m.offsetNs) + m.uncertaintyNs <= l.toleranceNs)
        return SyncStop{Outcome::InSync, {}};
    if (p.measureOnly)
        return SyncStop{Outcome::Drifted, "measured only (watch-correct=no)"};
    if (backwardStepRefused(p, t, m))
        return SyncStop{
            Outcome::Skipped,
            "policy: max-backward-step-ms=" + std::to_string(p.maxBackwardStepNs / 1'000'000) +
                ": the guest is ahead, not stepped back on " + std::string(triggerName(t))};
    return std::nullopt;
}

const char* shouldStop(int attempt, int attempts, const std::optional<Measurement>& last,
                       const Limits& l)
{
    if (attempt > 2 * attempts)
        return "out of attempts";
    if (attempt <= attempts || !last)
        return nullptr;
    if (closeEnough(*last, l))
        return "close enough once the budget is spent";
    // The very last set is never spent on a guest within its tolerance:
    // nothing could fix it if it landed badly (under load one set in a few
    // hundred lands milliseconds off).
    if (attempt == 2 * attempts && inTolerance(*last, l))
        return "within tolerance: the last set is not a gamble worth taking";
    return nullptr;
}

int64_t nextSetTime(int64_t hostNowNs, int64_t delayEstimateNs)
{
    return hostNowNs + delayEstimateNs;
}

} // namespace clocksync
