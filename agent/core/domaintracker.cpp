// SPDX-License-Identifier: Apache-2.0
// Domain tracker.
#include "domaintracker.h"

namespace clocksync {

const char* domainStateName(DomainState s)
{
    switch (s) {
    case DomainState::Idle:
        return "idle";
    case DomainState::WaitingAgent:
        return "waiting-for-agent";
    case DomainState::Syncing:
        return "syncing";
    }
    return "idle";
}

DomainTracker::DomainTracker(Scheduler& scheduler, const qga::Clock& clock, QObject* parent)
    : QObject(parent), m_scheduler(scheduler), m_clock(clock)
{
    qRegisterMetaType<clocksync::SyncResult>();
    connect(&m_scheduler, &Scheduler::finished, this, &DomainTracker::onJobFinished);
}

DomainTracker::Entry& DomainTracker::entry(const std::string& uuid, const std::string& name)
{
    Entry& e = m_domains[uuid];
    if (e.uuid.empty())
        e.uuid = uuid;
    if (!name.empty())
        e.name = name;
    return e;
}

// A drift-watch check may only measure (watch-correct=no), a boot syncs only
// with sync-on-boot: a trigger that always corrects takes over either when
// they coalesce (a reconcile that waits behind a boot's agent wait is not
// lost to sync-on-boot=no; found by the simulation, seed 313).
static bool mayOnlyMeasure(Trigger t)
{
    return t == Trigger::DriftWatch || t == Trigger::Booted;
}

// When two triggers coalesce, the one already there stays -- unless only
// the incoming one corrects. The one rule for every place they meet.
static bool replaces(Trigger incoming, Trigger kept)
{
    return mayOnlyMeasure(kept) && !mayOnlyMeasure(incoming);
}

uint64_t DomainTracker::trigger(const std::string& uuid, const std::string& name, Trigger t,
                                bool agentReconnecting, const RequestTuning& tuning)
{
    Entry& e = entry(uuid, name);
    const int64_t now = m_clock.monotonicNs();
    if (agentReconnecting)
        e.agentConnected = false;
    if (tuning.samples > 0 || tuning.attempts > 0)
        e.tuning = tuning;
    switch (e.state) {
    case DomainState::Syncing:
        // Something happened after the in-flight sync measured: sync again
        // after it. Coalesced triggers keep the first reason and time (a
        // restore emits "started restored" then "resumed from snapshot"),
        // unless the first could only measure.
        if (!e.again || replaces(t, e.again->first))
            e.again = {t, now};
        return m_lastGeneration + 1; // whatever starts next has at least this
    case DomainState::WaitingAgent:
        // Coalesced into the pending trigger: nothing has measured yet.
        if (replaces(t, e.trigger))
            e.trigger = t;
        return e.generation;
    case DomainState::Idle:
        // A late retry of a correcting trigger is pending (its agent or
        // libvirt did not answer): a boot or drift check does not replace it.
        if (e.agentRetry && e.agentRetry->isActive() && replaces(e.trigger, t))
            t = e.trigger;
        start(e, t, now);
        return e.generation;
    }
    return m_lastGeneration + 1;
}

void DomainTracker::start(Entry& e, Trigger t, int64_t triggerMonoNs, bool lateRetry)
{
    e.generation = ++m_lastGeneration;
    e.trigger = t;
    e.triggerMonoNs = triggerMonoNs;
    e.retryNs = std::min(m_firstRetryNs, m_agentWaitNs / 4); // a few tries within the wait
    if (!lateRetry)
        e.lateRetries = 0;
    if (e.agentConnected == false)
        waitForAgent(e);
    else
        dispatch(e);
}

void DomainTracker::dispatch(Entry& e)
{
    if (e.agentDeadline)
        e.agentDeadline->stop();
    if (e.agentRetry)
        e.agentRetry->stop();
    e.state = DomainState::Syncing;
    e.connectedWhileSyncing = false;
    e.cancelled = std::make_shared<std::atomic<bool>>(false);
    SyncJob job;
    job.uuid = e.uuid;
    job.domain = e.name;
    job.trigger = e.trigger;
    job.triggerMonoNs = e.triggerMonoNs;
    job.defaults = m_defaults;
    job.delay = e.delay;
    job.generation = e.generation;
    job.cancelled = e.cancelled;
    job.tuning = std::exchange(e.tuning, {});
    job.intendedRtcNs = e.intendedRtc;
    job.rtcAheadNs = e.rtcAhead;
    m_scheduler.submit(std::move(job));
}

void DomainTracker::waitForAgent(Entry& e)
{
    e.state = DomainState::WaitingAgent;
    if (!e.agentDeadline) {
        e.agentDeadline = std::make_unique<QTimer>();
        e.agentDeadline->setSingleShot(true);
        const std::string uuid = e.uuid;
        connect(e.agentDeadline.get(), &QTimer::timeout, this,
                [this, uuid] { onAgentDeadline(uuid); });
    }
    // The deadline counts from the trigger, not from each retry.
    const int64_t left = e.triggerMonoNs + m_agentWaitNs - m_clock.monotonicNs();
    e.agentDeadline->start(int(std::max<int64_t>(0, left / 1'000'000)));
    // An agent that stopped answering sends no event when it answers again,
    // and an event may be lost: try again on a schedule too.
    armRetry(e, e.retryNs);
    e.retryNs = std::min(2 * e.retryNs, kMaxAgentRetryNs);
}

void DomainTracker::armRetry(Entry& e, int64_t delayNs)
{
    if (!e.agentRetry) {
        e.agentRetry = std::make_unique<QTimer>();
        e.agentRetry->setSingleShot(true);
        const std::string uuid = e.uuid;
        connect(e.agentRetry.get(), &QTimer::timeout, this, [this, uuid] { onAgentRetry(uuid); });
    }
    e.agentRetry->start(int(std::min<int64_t>(delayNs / 1'000'000, INT32_MAX)));
}

void DomainTracker::onAgentRetry(const std::string& uuid)
{
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return;
    Entry& e = it->second;
    if (e.state == DomainState::WaitingAgent)
        dispatch(e);
    else if (e.state == DomainState::Idle) // a late retry, after the deadline
        start(e, e.trigger, m_clock.monotonicNs(), true);
}

void DomainTracker::cancel(const std::string& uuid, const std::string& reason)
{
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return;
    Entry& e = it->second;
    if (e.agentRetry)
        e.agentRetry->stop(); // no late retry of a domain paused or stopped
    if (e.again) {
        // A trigger queued behind the running sync will not run: it ends
        // here, so that whoever waits for it (a control request) is answered.
        auto [t, when] = *e.again;
        e.again.reset();
        SyncResult r = endedWithoutSync(e, Outcome::Cancelled);
        r.trigger = t;
        r.generation = ++m_lastGeneration; // the ticket its trigger got
        r.latencyNs = m_clock.monotonicNs() - when;
        r.note = reason;
        emit syncFinished(r); // not kept as `last`: the running sync's result will be
    }
    if (e.state == DomainState::Syncing) {
        e.cancelled->store(true); // the job checks before every set
        return;
    }
    if (e.state == DomainState::WaitingAgent) {
        e.agentDeadline->stop();
        e.state = DomainState::Idle;
        SyncResult r = endedWithoutSync(e, Outcome::Cancelled);
        r.note = reason;
        publish(e, std::move(r));
    }
}

void DomainTracker::rethink(const std::string& uuid, const std::string& name, Trigger idleTrigger)
{
    auto it = m_domains.find(uuid);
    if (it != m_domains.end() && it->second.state == DomainState::Syncing) {
        Entry& e = it->second;
        e.cancelled->store(true);
        // The same sync again, reading the policy and the clock afresh: the
        // cancelled job's own trigger, from its own time (a boot or drift
        // check queued behind it does not replace it). A measure-only job
        // (drift check, boot) is followed by a correcting one instead: the
        // change may ask for a sync (a policy's resync).
        const std::pair<Trigger, int64_t> rerun =
            mayOnlyMeasure(e.trigger) ? std::pair{idleTrigger, m_clock.monotonicNs()}
                                      : std::pair{e.trigger, e.triggerMonoNs};
        if (!e.again || replaces(rerun.first, e.again->first))
            e.again = rerun;
        return;
    }
    trigger(uuid, name, idleTrigger);
}

void DomainTracker::rtcSetElsewhere(const std::string& uuid, const std::string& name,
                                    std::optional<int64_t> meantNs)
{
    Entry& e = entry(uuid, name);
    if (meantNs)
        e.intendedRtc = meantNs;
    if (e.state == DomainState::Syncing) {
        e.intentMoved = e.intentMoved || meantNs.has_value(); // a repeat event keeps it
        rethink(uuid, name, Trigger::RtcChanged);
    }
}

void DomainTracker::forget(const std::string& uuid)
{
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return;
    cancel(uuid, "domain undefined");
    // A job still running posts its result to an entry that no longer
    // exists: onJobFinished drops it (a control request waiting for that
    // job was answered by cancel's result only if one was queued; the
    // running job's own result is published below as cancelled).
    if (it->second.state == DomainState::Syncing) {
        SyncResult r = endedWithoutSync(it->second, Outcome::Cancelled);
        r.note = "domain undefined";
        emit syncFinished(r);
    }
    m_domains.erase(it);
}

void DomainTracker::agentState(const std::string& uuid, const std::string& name, bool connected)
{
    Entry& e = entry(uuid, name);
    e.agentConnected = connected;
    if (connected && e.state == DomainState::WaitingAgent)
        dispatch(e);
    if (connected && e.state == DomainState::Syncing)
        e.connectedWhileSyncing = true; // a job failing for want of it tries again at once
}

void DomainTracker::onJobFinished(const JobResult& jr)
{
    auto it = m_domains.find(jr.result.uuid);
    if (it == m_domains.end())
        return; // forgotten meanwhile
    Entry& e = it->second;
    const SyncResult& r = jr.result;
    // A job of an entry forgotten and made again (an undefine while a sync
    // ran, then an event), whose end was already published: not this one's.
    if (e.state != DomainState::Syncing || r.generation != e.generation)
        return;
    if (r.ok()) // a failed sync's model is not kept: it may have learned its failure
        e.delay = jr.delay;
    if (jr.adjustmentNs) {
        if (!e.intentMoved)
            e.intendedRtc = *jr.adjustmentNs + jr.rtcAheadNs;
        e.rtcAhead = jr.rtcAheadNs;
    }
    e.intentMoved = false;
    e.state = DomainState::Idle;
    if (jr.policy)
        emit policySeen(e.uuid, e.name, applyOverride(m_defaults, *jr.policy));

    // Not connected, or connected and not answering (a busy or stopped guest
    // agent): not an outcome yet. A "connected" event or the retry timer
    // releases it; a set that may have landed meanwhile is measured first.
    const bool agentMissing =
        r.outcome == Outcome::Failed && r.error &&
        (r.error->kind == qga::ErrorKind::AgentUnavailable ||
         r.error->kind == qga::ErrorKind::Timeout || r.error->kind == qga::ErrorKind::Transport);
    const bool deadlineLeft = m_clock.monotonicNs() < e.triggerMonoNs + m_agentWaitNs;
    if (r.ok() || (r.error && r.error->kind != qga::ErrorKind::Timeout))
        e.setUnanswered = false; // answered: whatever was sent has been measured since
    else if (r.error && r.attempts > 0)
        e.setUnanswered = true;
    if (agentMissing && !e.cancelled->load()) {
        e.agentError = r.error;
        // A trigger that arrived while the job ran joins the wait: a new
        // generation, so a request's ticket is answered by its result.
        if (e.again && deadlineLeft) {
            if (replaces(e.again->first, e.trigger))
                e.trigger = e.again->first;
            e.triggerMonoNs = e.again->second; // its own full wait
            e.again.reset();
            e.generation = ++m_lastGeneration;
        }
        if (e.connectedWhileSyncing && deadlineLeft)
            return dispatch(e);
        if (r.error->kind == qga::ErrorKind::AgentUnavailable)
            e.agentConnected = false;
        if (deadlineLeft)
            return waitForAgent(e);
    }
    if (r.ok())
        e.lateRetries = 0;
    // Paused or stopped while its agent did not answer: that is a cancel,
    // not a failure, and nothing is retried late (the resume syncs).
    if (agentMissing && e.cancelled->load()) {
        SyncResult c = r;
        c.outcome = Outcome::Cancelled;
        c.note = "cancelled (paused, stopped or its policy changed) while its agent did not answer";
        publish(e, std::move(c));
        startQueued(e, false);
        return;
    }
    publish(e, r);
    if (agentMissing && !e.again)
        retryLate(e, r.error->kind == qga::ErrorKind::Transport || e.setUnanswered);
    startQueued(e, agentMissing);
}

void DomainTracker::startQueued(Entry& e, bool failedStillOwed)
{
    if (!e.again)
        return;
    auto [t, when] = *e.again;
    e.again.reset();
    // A failed trigger still needs its sync: a boot or drift check queued
    // behind it does not replace it (simulation, seed 313).
    if (failedStillOwed && replaces(e.trigger, t))
        t = e.trigger;
    start(e, t, when);
}

void DomainTracker::onAgentDeadline(const std::string& uuid)
{
    auto it = m_domains.find(uuid);
    if (it == m_domains.end() || it->second.state != DomainState::WaitingAgent)
        return;
    Entry& e = it->second;
    e.state = DomainState::Idle;
    if (e.agentRetry)
        e.agentRetry->stop();
    // We do not know any more: the next try asks the agent instead of
    // waiting for a "connected" event that may have been lost.
    e.agentConnected.reset();
    SyncResult r = endedWithoutSync(e, Outcome::Failed);
    const std::string within = " within " + std::to_string(m_agentWaitNs / 1'000'000'000) + " s";
    const bool libvirtFailed = e.agentError && e.agentError->kind == qga::ErrorKind::Transport;
    if (libvirtFailed)
        r.error = qga::makeError(qga::ErrorKind::Transport, "libvirt could not be asked" + within +
                                                                " (" + e.agentError->message + ")");
    else if (e.agentError && e.agentError->kind == qga::ErrorKind::Timeout)
        r.error = qga::makeError(qga::ErrorKind::Timeout, "guest agent did not answer" + within +
                                                              " (" + e.agentError->message + ")");
    else
        r.error = qga::makeError(qga::ErrorKind::AgentUnavailable,
                                 "guest agent did not connect" + within +
                                     (e.agentError ? " (" + e.agentError->message + ")" : ""));
    e.agentError.reset();
    publish(e, std::move(r));
    retryLate(e, libvirtFailed || e.setUnanswered);
}

// Past the deadline the agent is still tried, a few times and ever later:
// a guest busy for minutes still gets its clock set when it is back.
void DomainTracker::retryLate(Entry& e, bool untilAnswered)
{
    // libvirt that could not be asked is asked again for as long as it
    // takes (every 4 x agent-wait): the guest itself may be fine, and no
    // event tells when libvirt is (simulation, seed 3575).
    if (e.lateRetries >= kLateRetries && !untilAnswered)
        return;
    armRetry(e, m_agentWaitNs << std::min(e.lateRetries, kLateRetries - 1));
    ++e.lateRetries;
}

SyncResult DomainTracker::endedWithoutSync(const Entry& e, Outcome o) const
{
    SyncResult r;
    r.uuid = e.uuid;
    r.domain = e.name;
    r.trigger = e.trigger;
    r.generation = e.generation;
    r.outcome = o;
    r.latencyNs = m_clock.monotonicNs() - e.triggerMonoNs;
    r.finishedAtNs = m_clock.realtimeNs();
    return r;
}

void DomainTracker::publish(Entry& e, SyncResult r)
{
    e.last = r;
    emit syncFinished(r);
}

void DomainTracker::reconcile(const std::vector<std::pair<std::string, std::string>>& running)
{
    std::map<std::string, bool> alive;
    for (const auto& [uuid, name] : running) {
        alive[uuid] = true;
        // After a reconnect, agent events may have been missed: what we knew
        // of the agent is stale. Try it once; a wait in progress tries now.
        Entry& e = entry(uuid, name);
        e.agentConnected.reset();
        if (e.state == DomainState::WaitingAgent) {
            if (replaces(Trigger::Reconcile, e.trigger))
                e.trigger = Trigger::Reconcile;
            dispatch(e);
        } else
            trigger(uuid, name, Trigger::Reconcile);
    }
    for (auto& [uuid, e] : m_domains)
        if (!alive.count(uuid))
            cancel(uuid, "domain not running after reconnect");
}

std::vector<DomainStatus> DomainTracker::status() const
{
    std::vector<DomainStatus> out;
    for (const auto& [uuid, e] : m_domains)
        out.push_back({e.uuid, e.name, e.state, e.agentConnected, e.last,
                       e.again ? std::optional<Trigger>(e.again->first) : std::nullopt});
    return out;
}

bool DomainTracker::busy(const std::string& uuid) const
{
    auto it = m_domains.find(uuid);
    return it != m_domains.end() && it->second.state != DomainState::Idle;
}

int DomainTracker::pendingCount() const
{
    int n = 0;
    for (const auto& [uuid, e] : m_domains)
        n += e.state != DomainState::Idle;
    return n;
}

} // namespace clocksync
