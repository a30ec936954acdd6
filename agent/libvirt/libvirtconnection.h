// The daemon's libvirt connection: opened off the main thread, keepalive,
// close callback, reconnect with exponential backoff, and every domain event
// callback (re-)registered on each connection. libvirt callbacks only copy
// what they need and post it to the main thread as signals.
#pragma once

#include "libvirthandles.h"

#include <QObject>
#include <QTimer>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace clocksync {

class LibvirtConnection : public QObject
{
    Q_OBJECT
public:
    explicit LibvirtConnection(QString uri, QObject* parent = nullptr);
    ~LibvirtConnection() override;

    // Starts connecting (asynchronously); retries until stop().
    void start();
    void stop();
    bool isConnected() const { return m_connected; }
    QString uri() const { return m_uri; }
    int reconnects() const { return m_reconnects; }

    // Thread-safe: the current connection, referenced (null while down).
    std::shared_ptr<virConnect> connection() const;

    // Running domains as (uuid, name). Blocking: call from a worker.
    static std::vector<std::pair<std::string, std::string>> listRunning(virConnectPtr conn);
    // Runs fn on a background thread (connection open, domain listing).
    static void runInBackground(std::function<void()> fn);

signals:
    void connected();
    void disconnected(const QString& reason);
    void lifecycleEvent(const QString& uuid, const QString& name, int event, int detail);
    void agentLifecycleEvent(const QString& uuid, const QString& name, int state, int reason);
    void metadataChanged(const QString& uuid, const QString& name, int type, const QString& nsUri);
    void pmWakeup(const QString& uuid, const QString& name);
    void rtcChanged(const QString& uuid, const QString& name);

private:
    // Posts fn to the main thread; dropped if this object is gone by then.
    void postToMain(std::function<void()> fn);
    void tryOpen();
    void onOpened(virConnectPtr conn, const QString& error);
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
    std::shared_ptr<int> m_alive =
        std::make_shared<int>(0); // late posts of a destroyed object are dropped
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
};

} // namespace clocksync
