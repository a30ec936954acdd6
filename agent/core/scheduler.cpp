// SPDX-License-Identifier: Apache-2.0
// Scheduler.
#include "scheduler.h"

namespace clocksync {

Scheduler::Scheduler(DomainBackend& backend, const qga::Clock& clock, int concurrency,
                     QObject* parent)
    : Scheduler(backend, clock, std::make_unique<WorkerPool>(concurrency), parent)
{
}

Scheduler::Scheduler(DomainBackend& backend, const qga::Clock& clock,
                     std::unique_ptr<Executor> executor, QObject* parent)
    : QObject(parent), m_backend(backend), m_clock(clock), m_pool(std::move(executor))
{
    qRegisterMetaType<clocksync::JobResult>();
    MainThreadQueue::instance(); // created on the main thread, before any worker posts
}

Scheduler::~Scheduler()
{
    m_life.revoke();
    m_pool->waitForDone(INT32_MAX);
}

bool Scheduler::waitForDone(int msecs)
{
    return m_pool->waitForDone(msecs);
}

void Scheduler::submit(SyncJob job)
{
    auto run = std::make_shared<JobRun>(
        m_backend, m_clock, std::move(job), [this] { return m_pool->hasQueued(); }, &m_gate,
        &m_ownSets);
    m_pool->submit([this, back = m_life.handle(), run]() {
        if (counted([&] { return run->begin(); }))
            return deliver(back, *run);
        refineLater(back, run);
    });
}

// Within tolerance, a refine due, other guests waiting for their first set:
// they go first; the largest remaining offset refines first.
void Scheduler::refineLater(const Lifetime::Handle& back, const std::shared_ptr<JobRun>& run)
{
    m_pool->submitLater(
        [this, back, run]() {
            if (counted([&] { return run->refine(); }))
                deliver(back, *run);
            else
                refineLater(back, run);
        },
        run->pendingOffsetNs());
}

template <typename F> bool Scheduler::counted(F&& work)
{
    const int now = ++m_running;
    int peak = m_peak.load();
    while (now > peak && !m_peak.compare_exchange_weak(peak, now)) {
    }
    const bool done = work();
    --m_running;
    return done;
}

void Scheduler::deliver(const Lifetime::Handle& back, JobRun& run)
{
    back.post([this, out = run.take()]() { emit finished(out); });
}

// One job's steps, on a worker: each may end it early (finishEarly).
JobRun::JobRun(DomainBackend& backend, const qga::Clock& clock, SyncJob job,
               std::function<bool()> othersWaiting, RefineGate* gate, OwnSetLedger* ownSets)
    : m_backend(backend), m_clock(clock), m_ownSets(ownSets), m_job(std::move(job))
{
    m_out.delay = m_job.delay;
    m_req.trigger = m_job.trigger;
    m_req.triggerMonoNs = m_job.triggerMonoNs;
    m_req.policy = m_job.defaults;
    m_req.othersWaiting = std::move(othersWaiting);
    m_req.gate = gate;
    m_req.stoppedByTracker = [this] { return m_job.cancelled->load(); };
    m_req.stillRunning = [this] { return m_backend.isRunning(m_job.uuid); };
}

JobRun::~JobRun() = default;

bool JobRun::begin()
{
    if (m_job.cancelled->load()) {
        finishEarly(Outcome::Cancelled, std::nullopt, "cancelled before start");
        return true;
    }
    const qga::Expected<PolicyParse> policy = m_backend.readPolicy(m_job.uuid);
    qga::Expected<DomainFacts> facts = m_backend.facts(m_job.uuid);
    if (facts && facts->clock == DomainFacts::Clock::Variable)
        anchorAdjustment(*facts);
    // The first read that failed this way, if any.
    auto failed = [&](qga::ErrorKind kind) -> const qga::Error* {
        for (const qga::Error* e :
             {policy ? nullptr : &policy.error(), facts ? nullptr : &facts.error()})
            if (e && e->kind == kind)
                return e;
        return nullptr;
    };
    if (failed(qga::ErrorKind::NotRunning)) {
        finishEarly(Outcome::Cancelled, std::nullopt, "domain is gone");
        return true;
    }
    // libvirt could not be asked (its connection failed): not a problem of
    // the domain's, and nothing is set; the tracker tries again.
    if (const qga::Error* e = failed(qga::ErrorKind::Transport)) {
        finishEarly(Outcome::Failed, *e, "libvirt could not be asked about it");
        return true;
    }
    SyncPlan plan = planSync(m_job.trigger, m_job.defaults, policy, facts);
    // A definition edited while the domain is shut off or paused (virsh
    // define, virt-manager): its policy is read again when it starts or
    // resumes; its agent is not asked now (it would answer "not running").
    if (!plan.skip && m_job.trigger == Trigger::PolicyChanged) {
        const qga::Expected<bool> running = m_backend.isRunning(m_job.uuid);
        if (running && !*running)
            plan.skip = "not running: its policy is read again when it starts or resumes";
    }
    m_nextBoot = plan.nextBootPolicy;
    m_out.policy = plan.own;
    m_req.policy = plan.policy;
    m_job.tuning.applyTo(m_req.policy);
    if (facts)
        m_rtcAheadNs = facts->rtcAheadNs;
    if (!plan.skip && facts && facts->clock == DomainFacts::Clock::Variable &&
        plan.policy.mode == SyncMode::Host) {
        m_out.adjustmentNs = plan.target.shiftNs;
        m_out.rtcAheadNs = facts->rtcAheadNs;
    }
    if (!plan.skip)
        return startSync(plan.target);
    finishEarly(Outcome::Skipped, std::nullopt, *plan.skip);
    m_out.result.configProblem = plan.configProblem;
    return true;
}

// Which adjustment a variable clock keeps (docs/design.md §5): the one this
// domain was last aimed at or someone else changed it to (before either,
// the configured one) unless the live one moved away from it -- and not by
// a set of ours. hwclock's
// rounding of our writes, and a set of ours that landed late (the guest
// paused under the call), leave the live value where we would otherwise
// follow it: a second at a time, or as far back as the set was late.
void JobRun::anchorAdjustment(DomainFacts& facts) const
{
    if (m_job.intendedRtcNs &&
        std::llabs(*m_job.intendedRtcNs) <= kMaxAdjustmentS * 1'000'000'000) {
        // A transient domain undefined while running, defined with
        // basis='localtime': its live XML still adds the host's UTC offset.
        if (!facts.configuredAdjustmentNs) {
            facts.adjustmentNs -= m_job.rtcAheadNs;
            facts.rtcAheadNs = m_job.rtcAheadNs;
        }
        facts.configuredAdjustmentNs = *m_job.intendedRtcNs - facts.rtcAheadNs;
    }
    if (!facts.configuredAdjustmentNs || !m_ownSets ||
        std::llabs(facts.adjustmentNs - *facts.configuredAdjustmentNs) <= kRtcSecondNs)
        return;
    if (m_ownSets->explains(m_job.uuid, facts.adjustmentNs + facts.rtcAheadNs, m_clock.realtimeNs(),
                            OwnSetLedger::Seen::Now))
        facts.adjustmentNs = *facts.configuredAdjustmentNs;
    else // someone else's: followed (intendedTime), and our earlier writes are gone
        m_ownSets->overwritten(m_job.uuid);
}

bool JobRun::refine()
{
    if (!m_sync)
        return true;
    std::optional<SyncResult> r = m_sync->refine();
    if (r)
        finishSync(std::move(*r));
    return r.has_value();
}

int64_t JobRun::pendingOffsetNs() const
{
    return m_sync ? m_sync->pendingOffsetNs() : 0;
}

JobResult JobRun::take()
{
    m_sync.reset(); // it refers to the agent and to m_out.delay
    m_agent.reset();
    m_out.result.uuid = m_job.uuid;
    m_out.result.domain = m_job.domain;
    m_out.result.generation = m_job.generation;
    return std::move(m_out);
}

bool JobRun::startSync(const IntendedTime& target)
{
    qga::Expected<std::unique_ptr<qga::GuestAgent>> agent = m_backend.openAgent(m_job.uuid);
    if (!agent) {
        finishEarly(Outcome::Failed, agent.error(), {});
        return true;
    }
    if (m_ownSets)
        *agent = std::make_unique<RecordingAgent>(std::move(*agent), *m_ownSets, m_clock,
                                                  m_job.uuid, m_rtcAheadNs);
    // clock offset='variable': the guest is meant to run at host + adjustment.
    m_agent = aimedAt(std::move(*agent), target);
    m_target = target;
    m_req.policy.measureOnly = m_job.trigger == Trigger::DriftWatch && !m_req.policy.watchCorrect;
    m_sync = std::make_unique<Sync>(*m_agent, m_clock, m_req, m_out.delay);
    if (std::optional<SyncResult> r = m_sync->begin()) {
        finishSync(std::move(*r));
        return true;
    }
    return false;
}

void JobRun::finishSync(SyncResult r)
{
    m_out.result = std::move(r);
    m_out.result.nextBootPolicy = m_nextBoot;
    noteTarget(m_out.result, m_target);
}

void JobRun::finishEarly(Outcome o, std::optional<qga::Error> e, std::string note)
{
    m_out.result.trigger = m_job.trigger;
    m_out.result.outcome = o;
    m_out.result.error = std::move(e);
    m_out.result.note = std::move(note);
    m_out.result.latencyNs = m_clock.monotonicNs() - m_job.triggerMonoNs;
    m_out.result.finishedAtNs = m_clock.realtimeNs();
    m_out.result.nextBootPolicy = m_nextBoot;
}

JobResult Scheduler::execute(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job)
{
    JobRun run(backend, clock, job, {}, nullptr, nullptr);
    if (!run.begin())
        while (!run.refine()) {
        }
    return run.take();
}

} // namespace clocksync
