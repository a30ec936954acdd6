// SPDX-License-Identifier: Apache-2.0
// agent/core: everything the daemon decides, with no libvirt in sight --
// this engine, the settings table (settings.h), policy, the per-domain
// tracker and its scheduler, the drift watch, the control protocol, and the
// interfaces the outside is reached through (Hypervisor, DomainBackend,
// qga's GuestAgent and Clock).
//
// The sync (docs/design.md §6): measure, set host now + d, verify, re-correct,
// in two phases, over an injected Clock and GuestAgent. Its parts: the delay
// model (delaymodel.h), the refine gate (refinegate.h), measurement
// (measure.h) and the pure decisions (syncrules.h).
#pragma once

#include "clock.h"
#include "delaymodel.h"
#include "guestagent.h"
#include "measure.h"
#include "policy.h"
#include "refinegate.h"
#include "syncresult.h"
#include "syncrules.h"

#include <functional>
#include <memory>

namespace clocksync {

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
    // Checked right before every set, first stoppedByTracker, then
    // stillRunning. stoppedByTracker true: the tracker stopped this job (a
    // pause or stop event, the guest's own RTC change, a change of its policy
    // or of the defaults) -- Cancelled, saying so, not "no longer running"
    // (the domain may well run on). stillRunning false (libvirt says it is
    // not running): Cancelled; an error (libvirt cannot tell, e.g. its
    // connection is gone): Failed.
    std::function<bool()> stoppedByTracker;
    std::function<qga::Expected<bool>()> stillRunning;
};

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
