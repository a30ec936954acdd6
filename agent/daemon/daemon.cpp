// SPDX-License-Identifier: Apache-2.0
// Daemon wiring.
#include "daemon.h"

#include "settings.h"

#include <grp.h>

#include <set>

#include <QLoggingCategory>
#include <QTimer>

Q_LOGGING_CATEGORY(lcDaemon, "clocksync.daemon")

namespace clocksync {

Daemon::Daemon(DaemonConfig config, std::unique_ptr<Hypervisor> hypervisor, const qga::Clock& clock,
               QObject* parent)
    : Daemon(std::move(config), std::move(hypervisor), clock, nullptr, parent)
{
}

Daemon::Daemon(DaemonConfig config, std::unique_ptr<Hypervisor> hypervisor, const qga::Clock& clock,
               std::unique_ptr<Executor> executor, QObject* parent)
    : QObject(parent), m_config(std::move(config)), m_clock(clock),
      m_hypervisor(std::move(hypervisor)),
      m_scheduler(
          executor
              ? std::make_unique<Scheduler>(m_hypervisor->backend(), clock, std::move(executor))
              : std::make_unique<Scheduler>(m_hypervisor->backend(), clock, m_config.concurrency)),
      m_tracker(std::make_unique<DomainTracker>(*m_scheduler, clock)),
      m_reporter(m_config.metricsTextfile, clock),
      m_handler(*m_tracker, *m_hypervisor, m_reporter, [this] { updateMetrics(); })
{
    applyRuntimeSettings();
    wire();
}

Daemon::~Daemon()
{
    shutdown();
}

// The settings that may change while running (reload()).
void Daemon::applyRuntimeSettings()
{
    m_tracker->setDefaults(m_config.policy);
    m_tracker->setAgentWait(int64_t(m_config.agentWaitSeconds) * 1'000'000'000);
    m_rtc.setMinInterval(int64_t(m_config.rtcChangeMinIntervalSeconds) * 1'000'000'000);
    m_reporter.setTextfile(m_config.metricsTextfile);
}

void Daemon::wire()
{
    Hypervisor* h = m_hypervisor.get();
    connect(h, &Hypervisor::connected, this, &Daemon::onConnected);
    connect(h, &Hypervisor::connected, this, &Daemon::updateMetrics);
    connect(h, &Hypervisor::disconnected, this, &Daemon::updateMetrics);
    connect(h, &Hypervisor::domainEvent, this, &Daemon::onEvent);
    connect(m_tracker.get(), &DomainTracker::syncFinished, this, &Daemon::onResult);
    connect(&m_clockStep, &ClockStepWatcher::stepped, this, &Daemon::onHostClockStep);
    connect(m_tracker.get(), &DomainTracker::policySeen, this,
            [this](const std::string& uuid, const std::string& name, const SyncPolicy& p) {
                m_drift.setInterval(uuid, name, p.active() ? p.watchIntervalSeconds * 1000 : 0);
                m_reporter.metrics().setTolerance(name, p.toleranceNs);
            });
    // The textfile is rewritten at least every minute: a file whose
    // timestamp stops moving is a daemon that died without removing it.
    m_textfileRefresh.setInterval(60'000);
    connect(&m_textfileRefresh, &QTimer::timeout, this, &Daemon::updateMetrics);
    connect(&m_drift, &DriftWatch::due, this,
            [this](const std::string& uuid, const std::string& name) {
                m_tracker->trigger(uuid, name, Trigger::DriftWatch);
            });
    connect(&m_sleep, &SleepWatcher::hostResumed, this, [this] {
        qCInfo(lcDaemon) << "host woke from sleep: checking every running guest";
        syncAllRunning(Trigger::HostWake);
    });
}

QString Daemon::start()
{
    qCInfo(lcDaemon).noquote() << "starting: uri" << m_config.uri << "transport"
                               << transportName(m_config.transport) << "concurrency"
                               << m_config.concurrency;
    if (const QString err = openControl(); !err.isEmpty())
        return err;
    updateMetrics();
    if (!m_config.metricsListen.isEmpty()) {
        m_metricsServer = std::make_unique<MetricsServer>([this] {
            updateMetrics();
            return m_reporter.metricsText();
        });
        if (const QString err = m_metricsServer->listen(m_config.metricsListen); !err.isEmpty())
            qCWarning(lcDaemon).noquote()
                << "metrics-listen" << m_config.metricsListen << ": cannot listen:" << err;
        else
            qCInfo(lcDaemon).noquote() << "serving metrics on" << m_config.metricsListen << "port"
                                       << m_metricsServer->port() << "at /metrics";
    }
    if (const QString why = m_clockStep.start(); !why.isEmpty())
        qCWarning(lcDaemon).noquote() << "not watching for host clock steps:" << why;
    if (const QString why = m_sleep.start(); !why.isEmpty())
        qCInfo(lcDaemon).noquote() << "not watching for host sleep:" << why;
    m_hypervisor->start();
    m_textfileRefresh.start();
    return {};
}

// The control socket (also the single-instance lock); an error if it
// cannot be served.
QString Daemon::openControl()
{
    const QString path = m_config.controlSocket.isEmpty() ? defaultControlPath(m_config.uri)
                                                          : m_config.controlSocket;
    std::optional<gid_t> gid;
    if (!m_config.controlGroup.isEmpty()) {
        if (struct group* g = getgrnam(m_config.controlGroup.toLocal8Bit().constData()))
            gid = g->gr_gid;
        else
            qCWarning(lcDaemon).noquote()
                << "control-group" << m_config.controlGroup << "does not exist, ignoring";
    }
    m_control = std::make_unique<ControlServer>(path, gid);
    m_control->setHandler([this](const ControlRequest& req, ControlServer::Reply reply) {
        m_handler.handle(req, std::move(reply));
    });
    if (const QString err = m_control->listen(); !err.isEmpty()) {
        // Two daemons would both set every guest: the second one stops here.
        // So does one that cannot listen at all -- the socket is also the
        // single-instance lock, and without it the CLI would sync beside us.
        m_control.reset();
        return err;
    } else {
        qCInfo(lcDaemon).noquote() << "control socket" << path;
    }
    return {};
}

void Daemon::shutdown()
{
    if (m_stopping)
        return;
    m_stopping = true;
    m_hypervisor->stop();
    for (const DomainStatus& s : m_tracker->status())
        m_tracker->cancel(s.uuid, "daemon stopping");
    // Agent calls are bounded by agent-timeout-seconds; a set already sent completes.
    if (!m_scheduler->waitForDone((m_config.agentTimeoutSeconds + 2) * 1000))
        qCWarning(lcDaemon) << "in-flight syncs did not finish in time; abandoning them";
    m_textfileRefresh.stop();
    m_reporter.removeTextfile();
}

QStringList Daemon::reload(const DaemonConfig& next)
{
    DaemonConfig applied = next;
    QStringList changes;
    bool policyChanged = false;
    for (const Setting& s : settings()) {
        const QString was = s.get(m_config);
        const QString now = s.get(next);
        if (!s.section || was == now)
            continue;
        policyChanged = policyChanged || s.perDomain;
        QString line = QStringLiteral("%1 = %2").arg(QLatin1String(s.key), now);
        if (needsRestart(s.key)) {
            s.set(applied, was);
            line += " (kept until a restart)";
        }
        changes << line;
    }
    m_config = applied;
    applyRuntimeSettings();
    // A sync in flight must not go on under defaults that now say otherwise.
    // Every running guest is checked again under the new defaults (one left
    // alone under mode=off is synced when it is turned back on).
    if (policyChanged) {
        for (const DomainStatus& s : m_tracker->status())
            if (s.state == DomainState::Syncing)
                m_tracker->policyChanged(s.uuid, s.name);
        syncAllRunning(Trigger::PolicyChanged);
    }
    updateMetrics();
    return changes;
}

void Daemon::onConnected()
{
    // Events may have been lost while we were away: check every running guest.
    // A listing that failed is not "nothing runs": that would cancel every
    // sync in flight and start none. Try again shortly.
    m_hypervisor->listRunning([this](qga::Expected<DomainList> running) {
        if (m_stopping)
            return;
        if (!running) {
            qCWarning(lcDaemon).noquote()
                << "cannot list the running domains, reconciling again in" << m_listRetryMs / 1000
                << "s:" << QString::fromStdString(running.error().message);
            QTimer::singleShot(m_listRetryMs, this, [this] {
                if (m_hypervisor->isConnected())
                    onConnected();
            });
            return;
        }
        qCInfo(lcDaemon) << "reconciling" << running->size() << "running domain(s)";
        m_tracker->reconcile(*running);
        forgetVanished(); // undefined or destroyed while we were away
    });
}

void Daemon::syncAllRunning(Trigger t)
{
    m_hypervisor->listRunning([this, t](qga::Expected<DomainList> running) {
        if (m_stopping)
            return;
        if (!running) {
            qCWarning(lcDaemon).noquote()
                << "cannot list the running domains for" << QString::fromLatin1(triggerName(t))
                << "; retrying in" << m_listRetryMs / 1000
                << "s:" << QString::fromStdString(running.error().message);
            QTimer::singleShot(m_listRetryMs, this, [this, t] { syncAllRunning(t); });
            return;
        }
        for (const auto& [uuid, name] : *running)
            m_tracker->trigger(uuid, name, t);
    });
}

void Daemon::onHostClockStep(int64_t stepNs)
{
    qCInfo(lcDaemon).noquote() << "host clock stepped by"
                               << QString::fromStdString(formatOffset(stepNs))
                               << "- checking every running guest";
    syncAllRunning(Trigger::HostClockStep);
}

// Undefined or migrated away: its state, learned delay, status row and
// metric series go; defined or migrated back later, it starts afresh.
void Daemon::forgetDomain(const std::string& uuid, const std::string& name)
{
    m_tracker->forget(uuid); // publishes a cancelled result first: onResult records it
    m_hypervisor->backend().forget(uuid);
    m_checkGone.erase(uuid);
    m_touched.erase(uuid);
    m_reporter.forget(uuid, name);
    m_rtc.forget(uuid);
    m_scheduler->ownSets().forget(uuid);
    m_drift.remove(uuid);
    m_migrations.forget(uuid);
    updateMetrics();
}

void Daemon::forgetVanished()
{
    const uint64_t asked = m_eventEpoch;
    m_hypervisor->listKnown([this, asked](qga::Expected<DomainList> known) {
        if (m_stopping)
            return;
        if (!known) { // proves nothing: ask again later (once)
            if (!m_vanishedRetry) {
                m_vanishedRetry = true;
                QTimer::singleShot(m_listRetryMs, this, [this] {
                    m_vanishedRetry = false;
                    forgetVanished();
                });
            }
            return;
        }
        std::set<std::string> have;
        for (const auto& [uuid, name] : *known)
            have.insert(uuid);
        // Epochs of domains libvirt does not have and the tracker never knew
        // (defined and undefined unstarted, a failed incoming migration) go.
        const std::vector<DomainStatus> status = m_tracker->status();
        std::set<std::string> tracked;
        for (const DomainStatus& s : status)
            tracked.insert(s.uuid);
        for (auto it = m_touched.begin(); it != m_touched.end();)
            it = !have.count(it->first) && !tracked.count(it->first) && it->second <= asked
                     ? m_touched.erase(it)
                     : std::next(it);
        bool newer = false;
        for (const DomainStatus& s : status) {
            if (have.count(s.uuid))
                continue;
            // An event after the listing was asked for may be its creation:
            // ask again rather than judge it by this listing.
            const auto touched = m_touched.find(s.uuid);
            if (touched != m_touched.end() && touched->second > asked) {
                newer = true;
                continue;
            }
            // One with work pending is looked at again when that work ends.
            if (s.state == DomainState::Idle)
                forgetDomain(s.uuid, s.name);
            else
                m_checkGone.insert(s.uuid);
        }
        if (newer)
            forgetVanished();
    });
}

void Daemon::onEvent(const QString& uuid, const QString& name, const EventAction& a)
{
    const std::string u = uuid.toStdString();
    const std::string n = name.toStdString();
    m_touched[u] = ++m_eventEpoch;
    switch (a.kind) {
    case EventAction::Sync:
    case EventAction::SyncIfBootPolicy: // the job reads the policy and may skip
        m_tracker->trigger(u, n, a.trigger);
        break;
    case EventAction::PolicyChanged: // a job in flight stops; the next re-reads it
        m_tracker->policyChanged(u, n);
        break;
    case EventAction::SyncWhenAgent:
        m_tracker->trigger(u, n, a.trigger, true);
        break;
    case EventAction::IncomingMigration:
        m_migrations.incoming(u);
        break;
    case EventAction::MigrationResumed: {
        const Trigger t = m_migrations.resumed(u, a.migrationDone);
        if (t == Trigger::MigratedIn)
            qCInfo(lcDaemon).noquote()
                << name + ":"
                << (a.migrationDone
                        ? "incoming migration complete"
                        : "runs here since the post-copy switch (memory still arriving)");
        m_tracker->trigger(u, n, t);
        break;
    }
    case EventAction::Stop:
        m_drift.remove(u);
        m_migrations.forget(u);
        forgetVanished(); // a transient domain that stopped is gone (answered later)
        [[fallthrough]];
    case EventAction::Cancel:
        m_tracker->cancel(u, "domain paused or stopped");
        break;
    case EventAction::Forget:
        forgetDomain(u, n);
        break;
    case EventAction::Undefined:
        forgetVanished();
        break;
    case EventAction::AgentConnected:
    case EventAction::AgentDisconnected:
        m_tracker->agentState(u, n, a.kind == EventAction::AgentConnected);
        break;
    case EventAction::RtcChanged:
        onRtcChange(u, n, a.rtcOffsetS);
        break;
    case EventAction::None:
        break;
    }
}

// RTC_CHANGE: someone else's set is refined to our target; our own sets
// (the same event) and bursts are filtered (RtcChangeFilter).
void Daemon::onRtcChange(const std::string& uuid, const std::string& name,
                         std::optional<int64_t> offsetS)
{
    const int64_t now = m_clock.monotonicNs();
    RtcChangeFilter::Decision d;
    // A guest can write any year into its RTC: beyond a plausible
    // adjustment the offset says nothing we could aim at (nor fits in ns).
    if (offsetS && std::llabs(*offsetS) > kMaxAdjustmentS)
        offsetS.reset();
    if (!offsetS) {
        // Whose it is cannot be told: one during or just after a sync of
        // ours is taken for ours.
        d = m_rtc.onEvent(uuid, now, m_tracker->busy(uuid));
    } else if (const int64_t offsetNs = *offsetS * 1'000'000'000; m_scheduler->ownSets().explains(
                   uuid, offsetNs, m_clock.realtimeNs(), OwnSetLedger::Seen::Reported)) {
        return; // a set of ours, or its rounding, whenever it landed
    } else {
        // Someone else's: a variable clock is meant to run there now, and a
        // sync of ours in flight would set it back to what it aimed at
        // before: it starts again. A set of ours already sent lands on top
        // of the guest's change: the event's value is kept (docs/design.md §5).
        m_tracker->rtcSetElsewhere(uuid, name,
                                   m_scheduler->ownSets().inFlight(uuid)
                                       ? std::optional<int64_t>(offsetNs)
                                       : std::nullopt);
        d = m_rtc.onForeignEvent(uuid, now);
    }
    if (d.action == RtcChangeFilter::Action::SyncNow) {
        m_tracker->trigger(uuid, name, Trigger::RtcChanged);
    } else if (d.action == RtcChangeFilter::Action::Defer) {
        const int ms = int(std::max<int64_t>(0, (d.dueNs - now) / 1'000'000));
        QTimer::singleShot(ms, this, [this, uuid, name] {
            if (m_rtc.fireDeferred(uuid, m_clock.monotonicNs()))
                m_tracker->trigger(uuid, name, Trigger::RtcChanged);
        });
    }
}

void Daemon::onResult(const SyncResult& r)
{
    m_rtc.ownSyncEnded(r.uuid, m_clock.monotonicNs(), r.attempts > 0);
    if (m_checkGone.erase(r.uuid) || r.outcome == Outcome::Cancelled)
        forgetVanished(); // stopped for good, or gone with libvirt?
    m_reporter.record(r);
    updateMetrics();
    m_handler.onResult(r);
    emit syncFinished(r);
}

void Daemon::updateMetrics()
{
    m_reporter.update(m_hypervisor->isConnected(), m_hypervisor->reconnects(),
                      m_tracker->trackedCount(), m_tracker->pendingCount());
}

} // namespace clocksync
