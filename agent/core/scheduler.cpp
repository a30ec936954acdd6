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
    m_alive.reset();
    m_pool.waitForDone(INT32_MAX);
}

bool Scheduler::waitForDone(int msecs)
{
    return m_pool.waitForDone(msecs);
}

void Scheduler::submit(SyncJob job)
{
    std::weak_ptr<int> alive = m_alive;
    m_pool.submit([this, alive, job = std::move(job)]() {
        const int now = ++m_running;
        int peak = m_peak.load();
        while (now > peak && !m_peak.compare_exchange_weak(peak, now)) {
        }
        JobResult out = execute(m_backend, m_clock, job);
        --m_running;
        MainThreadQueue::instance().post([this, alive, out = std::move(out)]() {
            if (alive.lock())
                emit finished(out);
        });
    });
}

JobResult Scheduler::execute(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job)
{
    JobResult out;
    out.delay = job.delay;
    SyncRequest req;
    req.trigger = job.trigger;
    req.triggerMonoNs = job.triggerMonoNs;
    req.policy = job.defaults;
    req.stillRunning = [&]() -> qga::Expected<bool> {
        if (job.cancelled->load())
            return false;
        return backend.isRunning(job.uuid);
    };

    bool decided = false;
    auto finishEarly = [&](Outcome o, std::optional<qga::Error> e, std::string note) {
        decided = true;
        out.result.trigger = job.trigger;
        out.result.outcome = o;
        out.result.error = std::move(e);
        out.result.note = std::move(note);
        out.result.latencyNs = clock.monotonicNs() - job.triggerMonoNs;
        out.result.finishedAtNs = clock.realtimeNs();
    };

    if (qga::Expected<PolicyParse> pol = backend.readPolicy(job.uuid)) {
        for (const QString& w : pol->warnings)
            qCWarning(lcPolicy).noquote()
                << QString::fromStdString(job.domain) << ": metadata" << w;
        out.policy = pol->policy;
        req.policy = applyOverride(job.defaults, pol->policy);
    } else if (pol.error().kind == qga::ErrorKind::NotRunning) {
        finishEarly(Outcome::Cancelled, std::nullopt, "domain is gone");
    } else {
        qCWarning(lcPolicy).noquote() << QString::fromStdString(job.domain)
                                      << ": cannot read policy metadata, using defaults:"
                                      << QString::fromStdString(pol.error().message);
    }

    DomainFacts facts;
    if (!decided) {
        if (qga::Expected<DomainFacts> f = backend.facts(job.uuid))
            facts = *f;
        else if (f.error().kind == qga::ErrorKind::NotRunning)
            finishEarly(Outcome::Cancelled, std::nullopt, "domain is gone");
        else
            qCWarning(lcPolicy).noquote() << QString::fromStdString(job.domain)
                                          << ": cannot read the domain XML, assuming a UTC clock:"
                                          << QString::fromStdString(f.error().message);
    }
    // An explicit mode in the domain's metadata overrides an intended offset.
    const bool explicitMode = out.policy && out.policy->has("mode");

    if (!decided) {
        if (job.cancelled->load()) {
            finishEarly(Outcome::Cancelled, std::nullopt, "cancelled before start");
        } else if (job.trigger == Trigger::DriftWatch && req.policy.watchIntervalS == 0) {
            finishEarly(Outcome::Skipped, std::nullopt, "policy: watch-interval=0");
        } else if (job.trigger == Trigger::RtcChanged && !req.policy.onRtcChange) {
            finishEarly(Outcome::Skipped, std::nullopt, "policy: on-rtc-change=no");
        } else if (job.trigger == Trigger::Booted && !req.policy.syncOnBoot) {
            finishEarly(Outcome::Skipped, std::nullopt, "policy: sync-on-boot=no");
        } else if (!req.policy.enabled || req.policy.mode == SyncMode::Off) {
            finishEarly(Outcome::Skipped, std::nullopt, "policy: mode=off");
        } else if (!facts.agentChannel) {
            finishEarly(Outcome::Skipped, std::nullopt, "no guest agent channel configured");
        } else if (facts.clock == DomainFacts::Clock::Absolute && !explicitMode) {
            finishEarly(Outcome::Skipped, std::nullopt,
                        "clock offset='absolute': the guest runs at a fixed time on purpose "
                        "(set mode in its metadata to sync it anyway)");
        } else {
            qga::Expected<std::unique_ptr<qga::GuestAgent>> agent = backend.openAgent(job.uuid);
            if (!agent) {
                finishEarly(Outcome::Failed, agent.error(), {});
            } else {
                req.policy.measureOnly =
                    job.trigger == Trigger::DriftWatch && !req.policy.watchCorrect;
                const bool shifted = facts.clock == DomainFacts::Clock::Variable &&
                                     facts.adjustmentNs != 0 && !explicitMode;
                if (shifted)
                    *agent = std::make_unique<ShiftedAgent>(std::move(*agent), facts.adjustmentNs);
                out.result = runSync(**agent, clock, req, out.delay);
                if (shifted) {
                    const std::string target = "target host " +
                                               formatOffset(facts.adjustmentNs) +
                                               " (clock offset='variable'); offsets relative to it";
                    out.result.note = out.result.note.empty() ? target
                                                              : out.result.note + "; " + target;
                }
            }
        }
    }
    out.result.uuid = job.uuid;
    out.result.domain = job.domain;
    out.result.generation = job.generation;
    return out;
}

} // namespace clocksync
