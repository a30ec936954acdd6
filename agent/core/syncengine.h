// SPDX-License-Identifier: Apache-2.0
// agent/core: everything the daemon decides, with no libvirt in sight --
// this engine, the settings table (settings.h), policy, the per-domain
// tracker and its scheduler, the drift watch, the control protocol, and the
// interfaces the outside is reached through (Hypervisor, DomainBackend,
// qga's GuestAgent and Clock).
//
// The sync algorithm (docs/design.md §6, §7), pure logic over an injected Clock
// and GuestAgent: probe K samples (min-RTT), skip if within tolerance, set
// host_now + d, verify, re-correct up to N attempts, learn d per domain.
#pragma once

#include "clock.h"
#include "guestagent.h"
#include "policy.h"
#include "syncresult.h"

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

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

// Shared by the syncs of one scheduler (thread-safe): a refine sets and
// verifies alone -- no other guest in phase 1, no other refine at the same
// time. Measured here: with 8 TCG guests resuming on 2 cores, a set made
// while the others set lands up to 14 ms late (the guest's vCPU waits for a
// host CPU), while the min-RTT verify still looks fine; one at a time, the
// guests' first sets done, a set lands as on a quiet host.
class RefineGate
{
public:
    void phase1Started();
    void phase1Ended();
    bool tryEnter(); // no phase 1 running and the gate free: now it is ours
    void leave();

private:
    std::mutex m_mutex;
    int m_phase1 = 0;
    bool m_held = false;
};

struct SyncRequest
{
    RefineGate* gate = nullptr; // none: refines never wait for other guests
    SyncPolicy policy;
    // Asked once, when the guest is within tolerance and a refine is due:
    // true lets other guests' first sets go first (Sync::begin then returns
    // and the caller runs Sync::refine later).
    std::function<bool()> othersWaiting;
    Trigger trigger = Trigger::Request;
    int64_t triggerMonoNs = 0; // when the trigger arrived (monotonic)
    // Checked right before every set: false aborts with Cancelled, an error
    // (libvirt cannot tell, e.g. its connection is gone) with Failed.
    std::function<qga::Expected<bool>()> stillRunning;
};

// ---- the decisions of a sync, pure (unit-tested one by one) -------------

// What "done" means for one guest: the policy's target and tolerance, raised
// to what the guest can show (its read granularity) or be set to (the RTC's
// whole seconds).
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

// Measures K samples; min-RTT; rejects a clock that stands still or runs
// backwards. If the best round trip is still over twice goodRttNs (a busy
// host), takes up to 2K more samples.
qga::Expected<Measurement> measure(qga::GuestAgent& agent, int samples, int64_t goodRttNs = 0);

// One sync in two phases (docs/design.md §6). begin(): measure, and set until the
// guest is within tolerance (phase 1, "coarse": what removes a resume's
// seconds); it returns the result unless a refine toward the target is due
// and req.othersWaiting says other guests wait for their first set. refine()
// (phase 2): wait for a quiet path (within the policy's refine window),
// re-measure, and set again only from a quiet measurement.
class SyncRun;
class Sync
{
public:
    Sync(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
         DelayModel& delay);
    ~Sync();
    Sync(const Sync&) = delete;
    Sync& operator=(const Sync&) = delete;

    std::optional<SyncResult> begin();
    // Nullopt: it stepped back again (others wait for their first set while
    // the refine gate is taken); call again later.
    std::optional<SyncResult> refine();
    // |offset| of the last verify: a scheduler serves the largest first.
    int64_t pendingOffsetNs() const;

private:
    std::unique_ptr<SyncRun> m_run;
};

// Runs one sync to the end (both phases). `delay` is the domain's model,
// updated in place.
SyncResult runSync(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
                   DelayModel& delay);

} // namespace clocksync
