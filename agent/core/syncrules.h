// SPDX-License-Identifier: Apache-2.0
// The decisions of a sync, pure and unit-tested one by one: limits, the
// verdict, when to stop, what to learn (docs/design.md §6, §7).
#pragma once

#include "delaymodel.h"
#include "policy.h"
#include "syncresult.h"
#include "trigger.h"

#include <optional>
#include <string>

namespace clocksync {

// What "done" means for one guest: the policy's target and tolerance, raised
// to what the guest can show (its read granularity) or be set to (the RTC's
// whole seconds).
struct Limits
{
    int64_t targetNs = 0;
    int64_t toleranceNs = 0;
    int64_t granularityNs = 1;
};
Limits effectiveLimits(const SyncPolicy& p, bool rtc, int64_t granularityNs);

bool inTolerance(const Measurement& m, const Limits& l);
// Close enough to stop once the `attempts` budget is spent: within the
// tolerance and within 4 x the target. Farther out, up to as many rounds
// again: one set through libvirt lands with a jitter of ~0.1-0.3 ms under
// TCG, and a fresh domain's model has not learned its delay yet.
bool closeEnough(const Measurement& m, const Limits& l);

// max-backward-step: a reconcile or host clock step (not a resume, restore or
// request) must not step a guest back by more than the policy allows.
bool backwardStepRefused(const SyncPolicy& p, Trigger t, const Measurement& m);

// The outcome a verify supports, or nullopt to go on setting. Synced only
// when the verified offset is within the target *and* offset + the verify's
// own uncertainty is within the tolerance; a result the uncertainty cannot
// vouch for is Approximate. An RTC set has whole-second resolution: within
// the (1 s) tolerance it is Approximate, the best an RTC gives.
// `jitterNs`: the learned set scatter; within it (and the tolerance) another
// set is a coin toss, so stop Approximate and say so in `note`.
std::optional<Outcome> verdict(const Measurement& v, const Limits& l, bool rtc, int64_t jitterNs,
                               std::string& note);

// Before any set: a reason not to set at all (in sync, measure-only, a
// refused backward step), or nullopt.
struct SyncStop
{
    Outcome outcome;
    std::string note;
};
std::optional<SyncStop> beforeSetting(const SyncPolicy& p, Trigger t, const Measurement& m,
                                      const Limits& l);

// Whether set number `attempt` (1-based) is not to be made, and why: past
// 2 x attempts; past `attempts` once the last verify is closeEnough; and the
// very last one for a guest already within its tolerance. Null: make it.
const char* shouldStop(int attempt, int attempts, const std::optional<Measurement>& last,
                       const Limits& l);

// The guest time to send: the host's now, read right before the call, plus
// the learned host→guest delay of a set.
int64_t nextSetTime(int64_t hostNowNs, int64_t delayEstimateNs);

// Whether the path was quiet for this measurement: its round trip within
// twice the domain's recent floor (DelayModel::bestRttNs). Under a resume
// storm a set or a verify on a busy path is a coin toss.
bool quietPath(const Measurement& m, const DelayModel& d);

// Whether a verify may teach the delay model: a quiet path, a residual a
// delay can explain, and more than quantisation.
bool shouldLearn(const Measurement& v, const DelayModel& d, const Limits& l);

// Get-time samples per measurement: the policy's, three times as many where
// a set is expensive (>= 100 ms: a distribution guest's hwclock), so that
// fewer sets are spent on a better-measured guest.
int samplesFor(const SyncPolicy& p, const DelayModel& d);

// The set scatter a verdict may stop at: the trusted jitter (a full window of
// observations), or where a set is expensive, the jitter of 3 or more (seven
// sets of ~1 s each are too high a price for the window).
int64_t stopJitterNs(const DelayModel& d);

} // namespace clocksync
