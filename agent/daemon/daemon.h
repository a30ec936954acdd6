// SPDX-License-Identifier: Apache-2.0
// virt-clocksyncd's wiring. What lives where in agent/daemon:
//   main.cpp            arguments, config, signals (SIGTERM/SIGINT stop, SIGHUP reloads), sd_notify
//   daemon.*            routes: hypervisor events → tracker → scheduler → results
//   controlhandler.*    the control socket's commands, status JSON, sync fan-in
//   controlserver.*     the control socket itself (peer credentials, bounds)
//   reporter.*, metrics.*  log lines, journald fields, Prometheus metrics
//   metricsserver.*     the optional HTTP /metrics endpoint (metrics-listen)
//   clockstep.*, sleepwatcher.*, unixsignals.*  host watchers
// The Daemon knows the hypervisor only as the core's Hypervisor interface;
// main.cpp gives it the libvirt one, tests a fake.
#pragma once

#include "clockstep.h"
#include "config.h"
#include "controlhandler.h"
#include "controlserver.h"
#include "domaintracker.h"
#include "driftwatch.h"
#include "hypervisor.h"
#include "metricsserver.h"
#include "reporter.h"
#include "rtcchange.h"
#include "sleepwatcher.h"

#include <QObject>
#include <QTimer>

#include <map>
#include <memory>
#include <set>

namespace clocksync {

class Daemon : public QObject
{
    Q_OBJECT
public:
    Daemon(DaemonConfig config, std::unique_ptr<Hypervisor> hypervisor,
           const qga::Clock& clock = qga::SystemClock::instance(), QObject* parent = nullptr);
    // Jobs on `executor` instead of a WorkerPool of `concurrency` threads
    // (the simulation's deterministic executor, tests/sim).
    Daemon(DaemonConfig config, std::unique_ptr<Hypervisor> hypervisor, const qga::Clock& clock,
           std::unique_ptr<Executor> executor, QObject* parent = nullptr);
    ~Daemon() override;

    // Error text if the daemon must not run (another one serves this
    // control socket), else empty.
    QString start();
    // Stops taking events, aborts pending syncs, waits for in-flight ones.
    void shutdown();
    // A new config (SIGHUP): the sync defaults, agent wait, RTC interval and
    // metrics file take effect for the next jobs; tracked state is kept. What
    // needs a restart (uri, transport, concurrency, agent-timeout-seconds, the
    // control socket, metrics-listen) is left as it is. Returns one line per
    // changed key ("key = value", "... (kept until a restart)").
    QStringList reload(const DaemonConfig& next);

    DomainTracker& tracker() { return *m_tracker; }
    const Metrics& metrics() const { return m_reporter.metrics(); }
    const DriftWatch& driftWatch() const { return m_drift; }
    ControlServer* control() { return m_control.get(); }
    // The control socket's commands without the socket (the simulation's requests).
    ControlHandler& controlHandler() { return m_handler; }
    MetricsServer* metricsServer() { return m_metricsServer.get(); }
    Hypervisor& hypervisor() { return *m_hypervisor; }
    const DaemonConfig& config() const { return m_config; }

    // Host woke from sleep (or another host-wide reason): sync every running guest.
    void syncAllRunning(Trigger t);
    // The host clock was stepped by stepNs (also how tests inject a step).
    void onHostClockStep(int64_t stepNs);

    // Tests: a private D-Bus where they play logind, and a fake for the
    // host clock's sets (a test never sets this machine's clock). Before start().
    void setHostWatchSources(const QString& sleepBus, std::unique_ptr<ClockSetSource> clockSet)
    {
        m_sleep.setBusAddress(sleepBus);
        m_clockStep.setSource(std::move(clockSet));
    }

    // How often the metrics textfile is rewritten without an event (tests shorten it).
    void setTextfileRefreshMs(int ms) { m_textfileRefresh.setInterval(ms); }

    // After a failed listing of the running domains, the next try (tests shorten it).
    void setListRetryMs(int ms) { m_listRetryMs = ms; }

signals:
    void syncFinished(const clocksync::SyncResult& result);

private:
    int m_listRetryMs = 5000;
    void wire();
    void onConnected();
    void onEvent(const QString& uuid, const QString& name, const EventAction& a);
    void onResult(const SyncResult& r);
    void onRtcChange(const std::string& uuid, const std::string& name,
                     std::optional<int64_t> offsetS);
    void forgetDomain(const std::string& uuid, const std::string& name);
    // Forgets every tracked domain libvirt no longer has (a destroyed
    // transient, an undefined one, one gone while we were disconnected).
    void forgetVanished();
    void applyRuntimeSettings();
    void updateMetrics();
    QString openControl();

    DaemonConfig m_config;
    const qga::Clock& m_clock;
    std::unique_ptr<Hypervisor> m_hypervisor;
    std::unique_ptr<Scheduler> m_scheduler;
    std::unique_ptr<DomainTracker> m_tracker;
    SleepWatcher m_sleep;
    ClockStepWatcher m_clockStep;
    DriftWatch m_drift;
    Reporter m_reporter;
    ControlHandler m_handler;
    std::unique_ptr<ControlServer> m_control;
    std::unique_ptr<MetricsServer> m_metricsServer;
    MigrationSides m_migrations;
    RtcChangeFilter m_rtc{10'000'000'000};
    QTimer m_textfileRefresh;
    bool m_stopping = false;
    bool m_vanishedRetry = false;              // forgetVanished's listing failed; a retry is armed
    std::set<std::string> m_checkGone;         // missing from a listing while busy: look again
    uint64_t m_eventEpoch = 0;                 // counts domain events
    std::map<std::string, uint64_t> m_touched; // uuid -> epoch of its latest event
};

} // namespace clocksync
