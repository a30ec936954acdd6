// Daemon wiring.
#include "daemon.h"

#include "eventmap.h"

#include <grp.h>
#include <sys/uio.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

#include "workerpool.h"
#include <QCoreApplication>
#include <QLoggingCategory>

Q_LOGGING_CATEGORY(lcSync, "clocksync.sync")
Q_LOGGING_CATEGORY(lcDaemon, "clocksync.daemon")

namespace clocksync {

Daemon::Daemon(DaemonConfig config, QObject* parent) : QObject(parent), m_config(std::move(config))
{
    m_connection = std::make_unique<LibvirtConnection>(m_config.uri);
    LibvirtConnection* conn = m_connection.get();
    m_backend = std::make_unique<LibvirtBackend>([conn] { return conn->connection(); },
                                                 m_config.transport, m_config.agentTimeoutSeconds,
                                                 qga::SystemClock::instance());
    m_scheduler =
        std::make_unique<Scheduler>(*m_backend, qga::SystemClock::instance(), m_config.concurrency);
    m_tracker = std::make_unique<DomainTracker>(*m_scheduler, qga::SystemClock::instance());
    m_tracker->setDefaults(m_config.policy);
    m_tracker->setAgentWait(int64_t(m_config.agentWaitSeconds) * 1'000'000'000);
    m_rtc.setMinInterval(int64_t(m_config.rtcChangeMinIntervalSeconds) * 1'000'000'000);

    connect(conn, &LibvirtConnection::connected, this, &Daemon::onConnected);
    connect(conn, &LibvirtConnection::connected, this, &Daemon::updateMetrics);
    connect(conn, &LibvirtConnection::disconnected, this, &Daemon::updateMetrics);
    connect(conn, &LibvirtConnection::lifecycleEvent, this, &Daemon::onLifecycle);
    connect(conn, &LibvirtConnection::agentLifecycleEvent, this, &Daemon::onAgentLifecycle);
    connect(conn, &LibvirtConnection::metadataChanged, this, &Daemon::onMetadata);
    connect(conn, &LibvirtConnection::pmWakeup, this,
            [this](const QString& uuid, const QString& name) {
                m_tracker->trigger(uuid.toStdString(), name.toStdString(), Trigger::PmWakeup);
            });
    connect(conn, &LibvirtConnection::rtcChanged, this,
            [this](const QString& uuid, const QString& name) {
                onRtcChange(uuid.toStdString(), name.toStdString());
            });
    connect(m_tracker.get(), &DomainTracker::syncFinished, this, &Daemon::onResult);
    connect(&m_clockStep, &ClockStepWatcher::stepped, this, &Daemon::onHostClockStep);
    connect(m_tracker.get(), &DomainTracker::policySeen, this,
            [this](const std::string& uuid, const std::string& name, const SyncPolicy& p) {
                const bool on = p.enabled && p.mode != SyncMode::Off;
                m_drift.setInterval(uuid, name, on ? p.watchIntervalS * 1000 : 0);
            });
    connect(&m_drift, &DriftWatch::due, this,
            [this](const std::string& uuid, const std::string& name) {
                m_tracker->trigger(uuid, name, Trigger::DriftWatch);
            });
    connect(&m_sleep, &SleepWatcher::hostResumed, this, [this] {
        qCInfo(lcDaemon) << "host woke from sleep: checking every running guest";
        syncAllRunning(Trigger::HostWake);
    });
}

Daemon::~Daemon()
{
    shutdown();
    m_alive.reset();
}

QString Daemon::start()
{
    qCInfo(lcDaemon).noquote() << "starting: uri" << m_config.uri << "transport"
                               << transportName(m_config.transport) << "concurrency"
                               << m_config.concurrency;
    const QString controlPath = m_config.controlSocket.isEmpty()
                                    ? defaultControlPath(m_config.uri)
                                    : m_config.controlSocket;
    std::optional<gid_t> controlGid;
    if (!m_config.controlGroup.isEmpty()) {
        if (struct group* g = getgrnam(m_config.controlGroup.toLocal8Bit().constData()))
            controlGid = g->gr_gid;
        else
            qCWarning(lcDaemon).noquote()
                << "control-group" << m_config.controlGroup << "does not exist, ignoring";
    }
    m_control = std::make_unique<ControlServer>(controlPath, controlGid);
    m_control->setHandler([this](const ControlRequest& req, ControlServer::Reply reply) {
        handleControl(req, std::move(reply));
    });
    if (const QString err = m_control->listen(); !err.isEmpty()) {
        // Two daemons would both set every guest: the second one stops here.
        if (m_control->anotherInstance())
            return err;
        qCWarning(lcDaemon).noquote() << "control socket unavailable:" << err;
        m_control.reset();
    } else {
        qCInfo(lcDaemon).noquote() << "control socket" << controlPath;
    }
    updateMetrics();
    if (const QString why = m_clockStep.start(); !why.isEmpty())
        qCWarning(lcDaemon).noquote() << "not watching for host clock steps:" << why;
    if (const QString why = m_sleep.start(); !why.isEmpty())
        qCInfo(lcDaemon).noquote() << "not watching for host sleep:" << why;
    m_connection->start();
    return {};
}

void Daemon::shutdown()
{
    if (m_stopping)
        return;
    m_stopping = true;
    m_connection->stop();
    for (const DomainStatus& s : m_tracker->status())
        m_tracker->cancel(s.uuid, "daemon stopping");
    // Agent calls are bounded by agent-timeout-seconds; a set already sent completes.
    if (!m_scheduler->waitForDone((m_config.agentTimeoutSeconds + 2) * 1000))
        qCWarning(lcDaemon) << "in-flight syncs did not finish in time; abandoning them";
}

void Daemon::withRunningDomains(
    std::function<void(std::vector<std::pair<std::string, std::string>>)> fn)
{
    std::shared_ptr<virConnect> conn = m_connection->connection();
    if (!conn)
        return;
    std::weak_ptr<int> alive = m_alive;
    LibvirtConnection::runInBackground([this, alive, conn, fn = std::move(fn)]() {
        auto running = LibvirtConnection::listRunning(conn.get());
        MainThreadQueue::instance().post([this, alive, fn, running = std::move(running)]() {
            if (alive.lock() && !m_stopping)
                fn(running);
        });
    });
}

void Daemon::onConnected()
{
    // Events may have been lost while we were away: check every running guest.
    withRunningDomains([this](auto running) {
        qCInfo(lcDaemon) << "reconciling" << running.size() << "running domain(s)";
        m_tracker->reconcile(running);
    });
}

void Daemon::syncAllRunning(Trigger t)
{
    withRunningDomains([this, t](auto running) {
        for (const auto& [uuid, name] : running)
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
    m_skipNote.erase(uuid);
    m_rtc.forget(uuid);
    m_drift.remove(uuid);
    m_migrations.forget(uuid);
    m_metrics.forget(name);
    updateMetrics();
}

void Daemon::onLifecycle(const QString& uuid, const QString& name, int event, int detail)
{
    const EventAction a = mapLifecycleEvent(event, detail);
    const std::string u = uuid.toStdString();
    const std::string n = name.toStdString();
    switch (a.kind) {
    case EventAction::Sync:
    case EventAction::SyncIfBootPolicy: // the job reads the policy and may skip
        m_tracker->trigger(u, n, a.trigger);
        break;
    case EventAction::SyncWhenAgent:
        m_tracker->trigger(u, n, a.trigger, true);
        break;
    case EventAction::IncomingMigration:
        m_migrations.incoming(u);
        break;
    case EventAction::MigrationResumed:
        m_tracker->trigger(
            u, n, m_migrations.resumed(u, detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
        break;
    case EventAction::Cancel:
        m_tracker->cancel(u, "domain paused or stopped");
        if (event == VIR_DOMAIN_EVENT_STOPPED || event == VIR_DOMAIN_EVENT_SHUTDOWN)
            m_drift.remove(u);
        if (event == VIR_DOMAIN_EVENT_STOPPED)
            m_migrations.forget(u);
        if (event == VIR_DOMAIN_EVENT_STOPPED && detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
            forgetDomain(u, n); // it runs elsewhere now: nothing here is about it
        break;
    case EventAction::Forget:
        forgetDomain(u, n);
        break;
    default:
        break;
    }
}

void Daemon::onAgentLifecycle(const QString& uuid, const QString& name, int state, int reason)
{
    const EventAction a = mapAgentLifecycleEvent(state, reason);
    if (a.kind == EventAction::AgentConnected || a.kind == EventAction::AgentDisconnected)
        m_tracker->agentState(uuid.toStdString(), name.toStdString(),
                              a.kind == EventAction::AgentConnected);
}

void Daemon::onMetadata(const QString& uuid, const QString& name, int type, const QString& ns)
{
    if (type != VIR_DOMAIN_METADATA_ELEMENT || ns != QLatin1String(kMetadataUri))
        return;
    // The job re-reads the policy; mode=off makes it a no-op, anything else a
    // (cheap, skip-if-in-sync) check — which is also how a resync is requested.
    m_tracker->trigger(uuid.toStdString(), name.toStdString(), Trigger::PolicyChanged);
}

// RTC_CHANGE: someone else's set is refined to our target; our own sets
// (the same event) and bursts are filtered (RtcChangeFilter).
void Daemon::onRtcChange(const std::string& uuid, const std::string& name)
{
    const int64_t now = qga::SystemClock::instance().monotonicNs();
    const RtcChangeFilter::Decision d = m_rtc.onEvent(uuid, now, m_tracker->busy(uuid));
    if (d.action == RtcChangeFilter::Action::SyncNow) {
        m_tracker->trigger(uuid, name, Trigger::RtcChanged);
    } else if (d.action == RtcChangeFilter::Action::Defer) {
        const int ms = int(std::max<int64_t>(0, (d.dueNs - now) / 1'000'000));
        QTimer::singleShot(ms, this, [this, uuid, name] {
            if (m_rtc.fireDeferred(uuid, qga::SystemClock::instance().monotonicNs()))
                m_tracker->trigger(uuid, name, Trigger::RtcChanged);
        });
    }
}

void Daemon::onResult(const SyncResult& r)
{
    m_rtc.ownSyncEnded(r.uuid, qga::SystemClock::instance().monotonicNs(), r.attempts > 0);
    // A domain skipped for a standing reason of the domain (no agent channel,
    // absolute clock) is logged when first seen and when the reason changes,
    // not on every trigger. A policy's skip is the operator's own choice and
    // is logged each time.
    const bool standing = r.outcome == Outcome::Skipped && r.note.rfind("policy:", 0) != 0;
    const bool repeatSkip = standing && m_skipNote[r.uuid] == r.note;
    m_skipNote[r.uuid] = r.outcome == Outcome::Skipped ? r.note : std::string();
    if (!repeatSkip)
        logSyncResult(r);
    m_metrics.record(r);
    updateMetrics();
    // Control clients waiting for this domain get their answer.
    for (auto it = m_pendingSyncs.begin(); it != m_pendingSyncs.end();) {
        PendingSync& p = **it;
        const auto w = p.waiting.find(r.uuid);
        if (w != p.waiting.end() && r.generation >= w->second) {
            p.waiting.erase(w);
            p.results.push_back(resultToJson(r));
            if (p.waiting.empty()) {
                nlohmann::json j = controlOk();
                j["results"] = p.results;
                p.reply(j);
                it = m_pendingSyncs.erase(it);
                continue;
            }
        }
        ++it;
    }
    emit syncFinished(r);
}

void Daemon::updateMetrics()
{
    m_metrics.setConnected(m_connection->isConnected());
    m_metrics.setReconnects(m_connection->reconnects());
    m_metrics.setGuests(m_tracker->trackedCount(), m_tracker->pendingCount());
    if (!m_config.metricsTextfile.isEmpty())
        if (const QString err = m_metrics.writeTextfile(m_config.metricsTextfile); !err.isEmpty())
            qCWarning(lcDaemon).noquote()
                << "cannot write" << m_config.metricsTextfile << ":" << err;
}

nlohmann::json Daemon::statusJson(const std::vector<std::string>& only) const
{
    nlohmann::json j = controlOk();
    j["uri"] = m_config.uri.toStdString();
    j["connected"] = m_connection->isConnected();
    j["domains"] = nlohmann::json::array();
    for (const DomainStatus& s : m_tracker->status()) {
        if (!only.empty() && std::find(only.begin(), only.end(), s.name) == only.end() &&
            std::find(only.begin(), only.end(), s.uuid) == only.end())
            continue;
        nlohmann::json d = {
            {"domain", s.name}, {"uuid", s.uuid}, {"state", domainStateName(s.state)}};
        d["agent_connected"] =
            s.agentConnected ? nlohmann::json(*s.agentConnected) : nlohmann::json(nullptr);
        if (s.last)
            d["last"] = resultToJson(*s.last);
        if (s.queued)
            d["queued"] = std::string(triggerName(*s.queued));
        j["domains"].push_back(d);
    }
    return j;
}

void Daemon::handleControl(const ControlRequest& req, ControlServer::Reply reply)
{
    if (req.command == "ping") {
        reply(controlOk());
    } else if (req.command == "status") {
        reply(statusJson(req.domains));
    } else if (req.command == "metrics") {
        updateMetrics();
        nlohmann::json j = controlOk();
        j["text"] = m_metrics.render();
        reply(j);
    } else if (req.command == "sync") {
        if (!m_connection->isConnected())
            return reply(
                controlError("not connected to libvirt (" + m_config.uri.toStdString() + ")"));
        if (req.all == !req.domains.empty())
            return reply(controlError("sync needs domain names or all=true"));
        const std::vector<std::string> names = req.domains;
        withRunningDomains([this, names, all = req.all, reply](auto running) {
            std::vector<std::pair<std::string, std::string>> chosen;
            for (const std::string& n : names) {
                auto it = std::find_if(running.begin(), running.end(), [&](const auto& d) {
                    return d.second == n || d.first == n;
                });
                if (it == running.end())
                    return reply(controlError("no running domain named '" + n + "'"));
                chosen.push_back(*it);
            }
            requestSync(all ? running : chosen, reply);
        });
    } else {
        reply(controlError("unknown command"));
    }
}

void Daemon::requestSync(const std::vector<std::pair<std::string, std::string>>& domains,
                         ControlServer::Reply reply)
{
    if (domains.empty()) {
        nlohmann::json j = controlOk();
        j["results"] = nlohmann::json::array();
        return reply(j);
    }
    auto p = std::make_shared<PendingSync>();
    p->reply = std::move(reply);
    m_pendingSyncs.push_back(p);
    for (const auto& [uuid, name] : domains)
        p->waiting[uuid] = m_tracker->trigger(uuid, name, Trigger::Request);
}

std::vector<std::string> journalFields(const SyncResult& r)
{
    std::vector<std::string> f = {
        "MESSAGE=" + r.domain + ": " + describe(r),
        "PRIORITY=" + std::to_string(r.ok() ? 6 : 4),
        "DOMAIN=" + r.domain,
        "DOMAIN_UUID=" + r.uuid,
        "TRIGGER=" + std::string(triggerName(r.trigger)),
        "OUTCOME=" + std::string(outcomeName(r.outcome)),
        "ATTEMPTS=" + std::to_string(r.attempts),
        "LATENCY_NS=" + std::to_string(r.latencyNs),
    };
    if (r.before)
        f.push_back("OFFSET_BEFORE_NS=" + std::to_string(r.before->offsetNs));
    if (r.after) {
        f.push_back("OFFSET_AFTER_NS=" + std::to_string(r.after->offsetNs));
        f.push_back("UNCERTAINTY_AFTER_NS=" + std::to_string(r.after->uncertaintyNs));
    }
    if (r.error)
        f.push_back("ERROR=" + r.error->message);
    return f;
}

void logSyncResult(const SyncResult& r)
{
    // The drift watch is quiet while guests are fine: one line when one is not.
    if (r.trigger == Trigger::DriftWatch &&
        (r.outcome == Outcome::InSync || r.outcome == Outcome::Skipped ||
         r.outcome == Outcome::Cancelled))
        return;
#ifdef HAVE_LIBSYSTEMD
    // Under journald (systemd sets JOURNAL_STREAM for the service's stderr):
    // the same line, with fields to filter on (journalctl DOMAIN=web1).
    if (qEnvironmentVariableIsSet("JOURNAL_STREAM")) {
        const std::vector<std::string> fields = journalFields(r);
        std::vector<iovec> iov;
        for (const std::string& field : fields)
            iov.push_back({const_cast<char*>(field.data()), field.size()});
        if (sd_journal_sendv(iov.data(), int(iov.size())) >= 0)
            return;
    }
#endif
    const QString line = QString::fromStdString(r.domain + ": " + describe(r));
    if (r.ok())
        qCInfo(lcSync).noquote() << line;
    else
        qCWarning(lcSync).noquote() << line;
}

} // namespace clocksync
