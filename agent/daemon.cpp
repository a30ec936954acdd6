// Daemon wiring.
#include "daemon.h"

#include "eventmap.h"

#include <QCoreApplication>
#include <QLoggingCategory>
#include <QPointer>
#include <QThreadPool>

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
    m_scheduler = std::make_unique<Scheduler>(*m_backend, qga::SystemClock::instance(),
                                              m_config.concurrency);
    m_tracker = std::make_unique<DomainTracker>(*m_scheduler, qga::SystemClock::instance());
    m_tracker->setDefaults(m_config.policy);
    m_tracker->setAgentWait(int64_t(m_config.agentWaitSeconds) * 1'000'000'000);

    connect(conn, &LibvirtConnection::connected, this, &Daemon::onConnected);
    connect(conn, &LibvirtConnection::lifecycleEvent, this, &Daemon::onLifecycle);
    connect(conn, &LibvirtConnection::agentLifecycleEvent, this, &Daemon::onAgentLifecycle);
    connect(conn, &LibvirtConnection::metadataChanged, this, &Daemon::onMetadata);
    connect(conn, &LibvirtConnection::pmWakeup, this, [this](const QString& uuid, const QString& name) {
        m_tracker->trigger(uuid.toStdString(), name.toStdString(), Trigger::PmWakeup);
    });
    connect(m_tracker.get(), &DomainTracker::syncFinished, this, &Daemon::onResult);
}

Daemon::~Daemon()
{
    shutdown();
}

void Daemon::start()
{
    qCInfo(lcDaemon).noquote() << "starting: uri" << m_config.uri << "transport"
                               << transportName(m_config.transport) << "concurrency"
                               << m_config.concurrency;
    m_connection->start();
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
    QPointer<Daemon> self(this);
    QThreadPool::globalInstance()->start([self, conn, fn = std::move(fn)]() {
        auto running = LibvirtConnection::listRunning(conn.get());
        QMetaObject::invokeMethod(
            QCoreApplication::instance(),
            [self, fn, running = std::move(running)]() {
                if (self && !self->m_stopping)
                    fn(running);
            },
            Qt::QueuedConnection);
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
    case EventAction::SyncWhenAgent: m_tracker->trigger(u, n, a.trigger, true); break;
    case EventAction::Cancel: m_tracker->cancel(u, "domain paused or stopped"); break;
    default: break;
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

void Daemon::onResult(const SyncResult& r)
{
    logSyncResult(r);
    emit syncFinished(r);
}

void logSyncResult(const SyncResult& r)
{
    const QString line = QString::fromStdString(r.domain + ": " + describe(r));
    if (r.ok())
        qCInfo(lcSync).noquote() << line;
    else
        qCWarning(lcSync).noquote() << line;
}

} // namespace clocksync
