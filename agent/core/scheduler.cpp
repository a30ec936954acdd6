// SPDX-License-Identifier: Apache-2.0
// Scheduler.
#include "scheduler.h"

#include "shiftedagent.h"

#include <QLoggingCategory>

Q_LOGGING_CATEGORY(lcPolicy, "clocksync.policy")

namespace clocksync {

Scheduler::Scheduler(DomainBackend& backend, const qga::Clock& clock, int concurrency,
                     QObject* parent)
    : QObject(parent), m_backend(backend), m_clock(clock), m_pool(concurrency)
{
    qRegisterMetaType<clocksync::JobResult>();
    MainThreadQueue::instance(); // created on the main thread, before any worker posts
}

Scheduler::~Scheduler()
{
    m_life.revoke();
    m_pool.waitForDone(INT32_MAX);
}

bool Scheduler::waitForDone(int msecs)
{
    return m_pool.waitForDone(msecs);
}

void Scheduler::submit(SyncJob job)
{
    m_pool.submit([this, back = m_life.handle(), job = std::move(job)]() {
        const int now = ++m_running;
        int peak = m_peak.load();
        while (now > peak && !m_peak.compare_exchange_weak(peak, now)) {
        }
        JobResult out = execute(m_backend, m_clock, job);
        --m_running;
        back.post([this, out = std::move(out)]() { emit finished(out); });
    });
}

std::optional<std::string> skipReason(Trigger t, const SyncPolicy& p, const DomainFacts& facts,
                                      bool explicitMode)
{
    if (t == Trigger::DriftWatch && p.watchIntervalS == 0)
        return "policy: watch-interval=0";
    if (t == Trigger::RtcChanged && !p.onRtcChange)
        return "policy: on-rtc-change=no";
    if (t == Trigger::Booted && !p.syncOnBoot)
        return "policy: sync-on-boot=no";
    if (!p.active())
        return "policy: mode=off";
    if (!facts.agentChannel)
        return "no guest agent channel configured";
    if (facts.clock == DomainFacts::Clock::Absolute && !explicitMode)
        return "clock offset='absolute': the guest runs at a fixed time on purpose "
               "(set mode in its metadata to sync it anyway)";
    return std::nullopt;
}

namespace {

// One job's steps on its worker: each may end it early (finishEarly).
class JobRun
{
public:
    JobRun(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job)
        : m_backend(backend), m_clock(clock), m_job(job)
    {
        m_out.delay = job.delay;
        m_req.trigger = job.trigger;
        m_req.triggerMonoNs = job.triggerMonoNs;
        m_req.policy = job.defaults;
        m_req.stillRunning = [this]() -> qga::Expected<bool> {
            if (m_job.cancelled->load())
                return false;
            return m_backend.isRunning(m_job.uuid);
        };
    }

    JobResult run()
    {
        readPolicy();
        const DomainFacts facts = m_decided ? DomainFacts{} : readFacts();
        // An explicit mode in the domain's metadata overrides an intended offset.
        const bool explicitMode = m_out.policy && m_out.policy->has("mode");
        if (!m_decided)
            decide(facts, explicitMode);
        m_out.result.uuid = m_job.uuid;
        m_out.result.domain = m_job.domain;
        m_out.result.generation = m_job.generation;
        return std::move(m_out);
    }

private:
    void decide(const DomainFacts& facts, bool explicitMode)
    {
        if (m_job.cancelled->load())
            finishEarly(Outcome::Cancelled, std::nullopt, "cancelled before start");
        else if (auto why = skipReason(m_job.trigger, m_req.policy, facts, explicitMode))
            finishEarly(Outcome::Skipped, std::nullopt, *why);
        else
            sync(facts, explicitMode);
    }

    void readPolicy()
    {
        if (qga::Expected<PolicyParse> pol = m_backend.readPolicy(m_job.uuid)) {
            for (const QString& w : pol->warnings)
                qCWarning(lcPolicy).noquote()
                    << QString::fromStdString(m_job.domain) << ": metadata" << w;
            m_out.policy = pol->policy;
            m_req.policy = applyOverride(m_job.defaults, pol->policy);
        } else if (pol.error().kind == qga::ErrorKind::NotRunning) {
            finishEarly(Outcome::Cancelled, std::nullopt, "domain is gone");
        } else {
            qCWarning(lcPolicy).noquote() << QString::fromStdString(m_job.domain)
                                          << ": cannot read policy metadata, using defaults:"
                                          << QString::fromStdString(pol.error().message);
        }
    }

    DomainFacts readFacts()
    {
        qga::Expected<DomainFacts> f = m_backend.facts(m_job.uuid);
        if (f)
            return *f;
        if (f.error().kind == qga::ErrorKind::NotRunning)
            finishEarly(Outcome::Cancelled, std::nullopt, "domain is gone");
        else
            qCWarning(lcPolicy).noquote() << QString::fromStdString(m_job.domain)
                                          << ": cannot read the domain XML, assuming a UTC clock:"
                                          << QString::fromStdString(f.error().message);
        return {};
    }

    void sync(const DomainFacts& facts, bool explicitMode)
    {
        qga::Expected<std::unique_ptr<qga::GuestAgent>> agent = m_backend.openAgent(m_job.uuid);
        if (!agent)
            return finishEarly(Outcome::Failed, agent.error(), {});
        m_req.policy.measureOnly = m_job.trigger == Trigger::DriftWatch && !m_req.policy.watchCorrect;
        // clock offset='variable': the guest is meant to run at host + adjustment.
        const bool shifted = facts.clock == DomainFacts::Clock::Variable &&
                             facts.adjustmentNs != 0 && !explicitMode;
        if (shifted)
            *agent = std::make_unique<ShiftedAgent>(std::move(*agent), facts.adjustmentNs);
        m_out.result = runSync(**agent, m_clock, m_req, m_out.delay);
        if (!shifted)
            return;
        const std::string target = "target host " + formatOffset(facts.adjustmentNs) +
                                   " (clock offset='variable'); offsets relative to it";
        std::string& note = m_out.result.note;
        note = note.empty() ? target : note + "; " + target;
    }

    void finishEarly(Outcome o, std::optional<qga::Error> e, std::string note)
    {
        m_decided = true;
        m_out.result.trigger = m_job.trigger;
        m_out.result.outcome = o;
        m_out.result.error = std::move(e);
        m_out.result.note = std::move(note);
        m_out.result.latencyNs = m_clock.monotonicNs() - m_job.triggerMonoNs;
        m_out.result.finishedAtNs = m_clock.realtimeNs();
    }

    DomainBackend& m_backend;
    const qga::Clock& m_clock;
    const SyncJob& m_job;
    JobResult m_out;
    SyncRequest m_req;
    bool m_decided = false;
};

} // namespace

JobResult Scheduler::execute(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job)
{
    return JobRun(backend, clock, job).run();
}

} // namespace clocksync
