// virt-clocksyncd's wiring: libvirt connection → event mapping → tracker →
// scheduler → results logged. No logic of its own beyond routing.
#pragma once

#include "config.h"
#include "domaintracker.h"
#include "libvirtbackend.h"
#include "libvirtconnection.h"

#include <QObject>

#include <memory>

namespace clocksync {

class Daemon : public QObject
{
    Q_OBJECT
public:
    explicit Daemon(DaemonConfig config, QObject* parent = nullptr);
    ~Daemon() override;

    void start();
    // Stops taking events, aborts pending syncs, waits for in-flight ones.
    void shutdown();

    DomainTracker& tracker() { return *m_tracker; }
    LibvirtConnection& connection() { return *m_connection; }
    const DaemonConfig& config() const { return m_config; }

signals:
    void syncFinished(const clocksync::SyncResult& result);

private:
    void onConnected();
    void onLifecycle(const QString& uuid, const QString& name, int event, int detail);
    void onAgentLifecycle(const QString& uuid, const QString& name, int state, int reason);
    void onMetadata(const QString& uuid, const QString& name, int type, const QString& ns);
    void onResult(const SyncResult& r);
    // Lists running domains on a worker, then calls back on the main thread.
    void withRunningDomains(std::function<void(std::vector<std::pair<std::string, std::string>>)> fn);

    DaemonConfig m_config;
    std::unique_ptr<LibvirtConnection> m_connection;
    std::unique_ptr<LibvirtBackend> m_backend;
    std::unique_ptr<Scheduler> m_scheduler;
    std::unique_ptr<DomainTracker> m_tracker;
    bool m_stopping = false;

public:
    // Host woke from sleep (or another host-wide reason): sync every running guest.
    void syncAllRunning(Trigger t);
};

// Logs one line per sync outcome (journald fields when under journald).
void logSyncResult(const SyncResult& r);

} // namespace clocksync
