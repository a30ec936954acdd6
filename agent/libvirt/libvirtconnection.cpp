// LibvirtConnection.
#include "libvirtconnection.h"

#include <libvirt/virterror.h>

#include "workerpool.h"
#include <QCoreApplication>
#include <QLoggingCategory>

#include <map>

Q_LOGGING_CATEGORY(lcConn, "clocksync.connection")

namespace clocksync {

namespace {

constexpr int kMaxBackoffMs = 30'000;

struct DomainId
{
    QString uuid;
    QString name;
};

DomainId idOf(virDomainPtr dom)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = {};
    virDomainGetUUIDString(dom, uuid);
    const char* name = virDomainGetName(dom);
    return {QString::fromLatin1(uuid), QString::fromUtf8(name ? name : "")};
}

const char* closeReasonText(int reason)
{
    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR:
        return "I/O error";
    case VIR_CONNECT_CLOSE_REASON_EOF:
        return "libvirt daemon closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        return "keepalive timeout";
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        return "closed by client";
    default:
        return "unknown reason";
    }
}

} // namespace

// Objects whose callbacks may still fire, with their liveness token. The
// trampolines find `this` here under a mutex rather than reading it directly:
// the mutex orders them after construction (and before destruction) in a way
// ThreadSanitizer can check, which libvirt's own handoff is not.
static std::mutex s_registryMutex;
static std::map<const LibvirtConnection*, std::weak_ptr<int>> s_registry;

LibvirtConnection::LibvirtConnection(QString uri, QObject* parent)
    : QObject(parent), m_uri(std::move(uri))
{
    m_retry.setSingleShot(true);
    connect(&m_retry, &QTimer::timeout, this, &LibvirtConnection::tryOpen);
    std::lock_guard lock(s_registryMutex);
    s_registry[this] = m_alive;
}

LibvirtConnection::~LibvirtConnection()
{
    stop();
    std::lock_guard lock(s_registryMutex);
    s_registry.erase(this);
}

std::shared_ptr<virConnect> LibvirtConnection::connection() const
{
    std::lock_guard lock(m_mutex);
    return m_conn;
}

void LibvirtConnection::start()
{
    m_stopped = false;
    tryOpen();
}

void LibvirtConnection::stop()
{
    m_stopped = true;
    m_retry.stop();
    deregister();
    std::lock_guard lock(m_mutex);
    m_conn.reset();
    m_connected = false;
}

void LibvirtConnection::runInBackground(std::function<void()> fn)
{
    static WorkerPool pool(2);
    pool.submit(std::move(fn));
}

void LibvirtConnection::postToMain(std::function<void()> fn)
{
    std::weak_ptr<int> alive;
    {
        std::lock_guard lock(s_registryMutex);
        auto it = s_registry.find(this);
        if (it == s_registry.end())
            return; // destroyed
        alive = it->second;
    }
    MainThreadQueue::instance().post([alive, fn = std::move(fn)] {
        if (alive.lock())
            fn();
    });
}

void LibvirtConnection::tryOpen()
{
    if (m_stopped || m_opening)
        return;
    m_opening = true;
    // virConnectOpen may autostart a session daemon or wait on a socket: not
    // on the main thread.
    MainThreadQueue::instance();
    std::weak_ptr<int> alive = m_alive;
    const std::string uri = m_uri.toStdString();
    runInBackground([this, alive, uri]() {
        virConnectPtr c = virConnectOpen(uri.c_str());
        std::string error;
        if (!c) {
            virErrorPtr e = virGetLastError();
            error = e && e->message ? e->message : "unknown error";
        }
        MainThreadQueue::instance().post([this, alive, c, error]() {
            if (alive.lock())
                onOpened(c, QString::fromStdString(error));
            else if (c)
                virConnectClose(c);
        });
    });
}

void LibvirtConnection::onOpened(virConnectPtr raw, const QString& error)
{
    m_opening = false;
    if (!raw) {
        scheduleRetry(error);
        return;
    }
    if (m_stopped) {
        virConnectClose(raw);
        return;
    }
    auto conn = std::shared_ptr<virConnect>(raw, [](virConnectPtr c) { virConnectClose(c); });
    // Detect a dead daemon within ~15 s even when no event flows.
    if (virConnectSetKeepAlive(raw, 5, 3) < 0)
        qCDebug(lcConn) << "keepalive not supported by this connection";
    if (virConnectRegisterCloseCallback(raw, &LibvirtConnection::onCloseCallback, this, nullptr) ==
        0)
        m_closeCallbackRegistered = true;
    struct
    {
        int id;
        virConnectDomainEventGenericCallback cb;
    } events[] = {
        {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(&LibvirtConnection::onLifecycle)},
        {VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE,
         VIR_DOMAIN_EVENT_CALLBACK(&LibvirtConnection::onAgentLifecycle)},
        {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
         VIR_DOMAIN_EVENT_CALLBACK(&LibvirtConnection::onMetadata)},
        {VIR_DOMAIN_EVENT_ID_PMWAKEUP, VIR_DOMAIN_EVENT_CALLBACK(&LibvirtConnection::onPmWakeup)},
        {VIR_DOMAIN_EVENT_ID_RTC_CHANGE,
         VIR_DOMAIN_EVENT_CALLBACK(&LibvirtConnection::onRtcChange)},
    };
    std::vector<int> ids;
    for (const auto& ev : events) {
        int id = virConnectDomainEventRegisterAny(raw, nullptr, ev.id, ev.cb, this, nullptr);
        if (id >= 0)
            ids.push_back(id);
        else if (ev.id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
            virErrorPtr e = virGetLastError();
            const QString why = QString::fromUtf8(e && e->message ? e->message : "unknown error");
            for (int other : ids)
                virConnectDomainEventDeregisterAny(raw, other);
            scheduleRetry("cannot register for domain events: " + why);
            return;
        } else {
            qCDebug(lcConn) << "event" << ev.id << "not supported by this driver";
        }
    }
    {
        std::lock_guard lock(m_mutex);
        m_conn = std::move(conn);
        m_callbackIds = std::move(ids);
    }
    if (m_reconnects > 0 || m_backoffMs > 1000)
        qCInfo(lcConn).noquote() << "reconnected to" << m_uri;
    else
        qCInfo(lcConn).noquote() << "connected to" << m_uri;
    m_backoffMs = 1000;
    m_connected = true;
    emit connected();
}

void LibvirtConnection::scheduleRetry(const QString& why)
{
    if (m_stopped)
        return;
    qCWarning(lcConn).noquote() << "cannot connect to" << m_uri << ":" << why << "- retrying in"
                                << m_backoffMs / 1000.0 << "s";
    m_retry.start(m_backoffMs);
    m_backoffMs = std::min(m_backoffMs * 2, kMaxBackoffMs);
}

void LibvirtConnection::deregister()
{
    std::shared_ptr<virConnect> conn;
    std::vector<int> ids;
    {
        std::lock_guard lock(m_mutex);
        conn = m_conn;
        ids.swap(m_callbackIds);
    }
    if (!conn)
        return;
    for (int id : ids)
        virConnectDomainEventDeregisterAny(conn.get(), id);
    if (m_closeCallbackRegistered)
        virConnectUnregisterCloseCallback(conn.get(), &LibvirtConnection::onCloseCallback);
    m_closeCallbackRegistered = false;
}

void LibvirtConnection::onClosed(int reason)
{
    if (!m_connected)
        return;
    const QString why = QString::fromLatin1(closeReasonText(reason));
    qCWarning(lcConn).noquote() << "connection to" << m_uri << "lost:" << why;
    deregister();
    {
        std::lock_guard lock(m_mutex);
        m_conn.reset();
    }
    m_connected = false;
    ++m_reconnects;
    emit disconnected(why);
    scheduleRetry(why);
}

// ---- trampolines: copy, post, return ---------------------------------------

int LibvirtConnection::onLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail,
                                   void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    const DomainId id = idOf(dom);
    self->postToMain(
        [self, id, event, detail] { emit self->lifecycleEvent(id.uuid, id.name, event, detail); });
    return 0;
}

void LibvirtConnection::onAgentLifecycle(virConnectPtr, virDomainPtr dom, int state, int reason,
                                         void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    const DomainId id = idOf(dom);
    self->postToMain([self, id, state, reason] {
        emit self->agentLifecycleEvent(id.uuid, id.name, state, reason);
    });
}

void LibvirtConnection::onMetadata(virConnectPtr, virDomainPtr dom, int type, const char* nsuri,
                                   void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    const DomainId id = idOf(dom);
    const QString ns = QString::fromUtf8(nsuri ? nsuri : "");
    self->postToMain(
        [self, id, type, ns] { emit self->metadataChanged(id.uuid, id.name, type, ns); });
}

void LibvirtConnection::onPmWakeup(virConnectPtr, virDomainPtr dom, int, void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    const DomainId id = idOf(dom);
    self->postToMain([self, id] { emit self->pmWakeup(id.uuid, id.name); });
}

// The new utcoffset is not needed: a clock offset='variable' domain's live
// XML carries the new adjustment, which the sync job reads.
void LibvirtConnection::onRtcChange(virConnectPtr, virDomainPtr dom, long long, void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    const DomainId id = idOf(dom);
    self->postToMain([self, id] { emit self->rtcChanged(id.uuid, id.name); });
}

void LibvirtConnection::onCloseCallback(virConnectPtr, int reason, void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    self->postToMain([self, reason] { self->onClosed(reason); });
}

std::vector<std::pair<std::string, std::string>> LibvirtConnection::listRunning(virConnectPtr conn)
{
    std::vector<std::pair<std::string, std::string>> out;
    virDomainPtr* doms = nullptr;
    const int n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_RUNNING);
    for (int i = 0; i < n; ++i) {
        const DomainId id = idOf(doms[i]);
        out.emplace_back(id.uuid.toStdString(), id.name.toStdString());
        virDomainFree(doms[i]);
    }
    std::free(doms);
    return out;
}

} // namespace clocksync
