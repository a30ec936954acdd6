// virt-clocksyncd's wiring: libvirt connection → event mapping → tracker →
// scheduler → results logged. No logic of its own beyond routing.
#pragma once

#include "clockstep.h"
#include "config.h"
#include "controlserver.h"
#include "domaintracker.h"
#include "eventmap.h"
#include "rtcchange.h"
#include "driftwatch.h"
#include "libvirtbackend.h"
#include "libvirtconnection.h"
#include "metrics.h"
#include "sleepwatcher.h"

#include <QObject>

#include <memory>
#include <map>
#include <set>

namespace clocksync {

class Daemon : public QObject
{
    Q_OBJECT
public:
    explicit Daemon(DaemonConfig config, QObject* parent = nullptr);
    ~Daemon() override;

    // Error text if the daemon must not run (another one serves this
    // control socket), else empty.
    QString start();
    // Stops taking events, aborts pending syncs, waits for in-flight ones.
    void shutdown();

    DomainTracker& tracker() { return *m_tracker; }
    const Metrics& metrics() const { return m_metrics; }
    const DriftWatch& driftWatch() const { return m_drift; }
    ControlServer* control() { return m_control.get(); }
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
    void handleControl(const ControlRequest& req, ControlServer::Reply reply);
    nlohmann::json statusJson(const std::vector<std::string>& only) const;
    void requestSync(const std::vector<std::pair<std::string, std::string>>& domains,
                     ControlServer::Reply reply);
    void updateMetrics();
    // Lists running domains on a worker, then calls back on the main thread.
    void
    withRunningDomains(std::function<void(std::vector<std::pair<std::string, std::string>>)> fn);

    DaemonConfig m_config;
    std::unique_ptr<LibvirtConnection> m_connection;
    std::unique_ptr<LibvirtBackend> m_backend;
    std::unique_ptr<Scheduler> m_scheduler;
    std::unique_ptr<DomainTracker> m_tracker;
    SleepWatcher m_sleep;
    ClockStepWatcher m_clockStep;
    DriftWatch m_drift;
    Metrics m_metrics;
    std::unique_ptr<ControlServer> m_control;
    struct PendingSync
    {
        // uuid -> ticket: only a result of a job that started after the
        // request (generation >= ticket) answers it, never an earlier one.
        std::map<std::string, uint64_t> waiting;
        nlohmann::json results = nlohmann::json::array();
        ControlServer::Reply reply;
    };
    std::vector<std::shared_ptr<PendingSync>> m_pendingSyncs;
    MigrationSides m_migrations;
    RtcChangeFilter m_rtc{10'000'000'000};
    void onRtcChange(const std::string& uuid, const std::string& name);
    std::map<std::string, std::string> m_skipNote; // uuid -> why its last result was skipped
    void forgetDomain(const std::string& uuid, const std::string& name);
    bool m_stopping = false;
    std::shared_ptr<int> m_alive =
        std::make_shared<int>(0); // late posts after destruction are dropped

public:
    // Host woke from sleep (or another host-wide reason): sync every running guest.
    void syncAllRunning(Trigger t);
    // The host clock was stepped by stepNs (also how tests inject a step).
    void onHostClockStep(int64_t stepNs);
};

// Logs one line per sync outcome (journald fields when under journald).
void logSyncResult(const SyncResult& r);
// The structured journald fields of a result ("KEY=value"), MESSAGE first.
std::vector<std::string> journalFields(const SyncResult& r);

} // namespace clocksync
