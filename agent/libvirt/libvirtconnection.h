// SPDX-License-Identifier: Apache-2.0
// The Hypervisor over libvirt (agent/libvirt is the only code that includes
// libvirt): a connection opened off the main thread, keepalive, close
// callback, reconnect with exponential backoff, and every domain event
// callback (re-)registered on each connection and mapped to core terms
// (eventmap). libvirt callbacks only copy what they need and post it to the
// main thread. Owns the LibvirtBackend the scheduler's workers use.
#pragma once

#include "config.h"
#include "hypervisor.h"
#include "libvirtbackend.h"
#include "libvirthandles.h"
#include "quietretry.h"
#include "workerpool.h"

#include <QTimer>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace clocksync {

class LibvirtConnection final : public Hypervisor
{
    Q_OBJECT
public:
    LibvirtConnection(const DaemonConfig& config, const qga::Clock& clock,
                      QObject* parent = nullptr);
    ~LibvirtConnection() override;

    void start() override;
    void stop() override;
    bool isConnected() const override { return m_connected; }
    QString uri() const override { return m_uri; }
    int reconnects() const override { return m_reconnects; }
    void listRunning(std::function<void(qga::Expected<DomainList>)> fn) override;
    void listKnown(std::function<void(qga::Expected<DomainList>)> fn) override;
    DomainBackend& backend() override { return m_backend; }

    // Thread-safe: the current connection, referenced (null while down).
    std::shared_ptr<virConnect> connection() const;

private:
    void list(unsigned flags, std::function<void(qga::Expected<DomainList>)> fn);
    // Posts fn to the main thread; dropped if this object is gone by then.
    void postToMain(std::function<void()> fn);
    void postEvent(virDomainPtr dom, EventAction action);
    void tryOpen();
    void onOpened(virConnectPtr conn, const QString& error);
    // Registers every domain event; an error text if the lifecycle one fails.
    QString registerEvents(virConnectPtr conn, std::vector<int>& ids);
    void onClosed(int reason);
    void scheduleRetry(const QString& why);
    void deregister();

    // C trampolines (noexcept; run on libvirt's event thread).
    static int onLifecycle(virConnectPtr, virDomainPtr, int, int, void*) noexcept;
    static void onAgentLifecycle(virConnectPtr, virDomainPtr, int, int, void*) noexcept;
    static void onMetadata(virConnectPtr, virDomainPtr, int, const char*, void*) noexcept;
    static void onPmWakeup(virConnectPtr, virDomainPtr, int, void*) noexcept;
    static void onRtcChange(virConnectPtr, virDomainPtr, long long, void*) noexcept;
    static void onCloseCallback(virConnectPtr, int, void*) noexcept;

    QString m_uri;
    const qga::Clock& m_clock;
    QuietRetry m_quiet; // the "cannot connect" warnings: not every 30 s forever
    Lifetime m_life;    // late posts of a destroyed object are dropped
    mutable std::mutex m_mutex;
    std::shared_ptr<virConnect> m_conn;
    std::vector<int> m_callbackIds;
    bool m_closeCallbackRegistered = false;
    bool m_connected = false;
    bool m_stopped = true;
    bool m_opening = false;
    int m_backoffMs = 1000;
    int m_reconnects = 0;
    QTimer m_retry;
    LibvirtBackend m_backend;
    // Opening the connection and listing domains: blocking libvirt calls,
    // never on the main thread; drained by stop().
    WorkerPool m_background{1};
};

} // namespace clocksync
