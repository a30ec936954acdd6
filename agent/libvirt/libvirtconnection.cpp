// SPDX-License-Identifier: Apache-2.0
// LibvirtConnection: the libvirt Hypervisor.
#include "libvirtconnection.h"

#include "eventmap.h"

#include <libvirt/virterror.h>

#include <QCoreApplication>
#include <QLoggingCategory>

#include <map>

Q_LOGGING_CATEGORY(lcConn, "clocksync.connection", QtInfoMsg)

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
static std::map<const LibvirtConnection*, Lifetime::Handle> s_registry;

LibvirtConnection::LibvirtConnection(const DaemonConfig& config, const qga::Clock& clock,
                                     QObject* parent)
    : Hypervisor(parent), m_uri(config.uri), m_clock(clock),
      m_backend([this] { return connection(); }, config.transport, config.agentTimeoutSeconds,
                clock)
{
    qRegisterMetaType<clocksync::EventAction>();
    MainThreadQueue::instance(); // created on the main thread, before any worker posts
    m_retry.setSingleShot(true);
    connect(&m_retry, &QTimer::timeout, this, &LibvirtConnection::tryOpen);
    std::lock_guard lock(s_registryMutex);
    s_registry.emplace(this, m_life.handle());
}

LibvirtConnection::~LibvirtConnection()
{
    stop();
    m_life.revoke();
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
    {
        std::lock_guard lock(m_mutex);
        m_conn.reset();
        m_connected = false;
    }
    // An open or a listing in flight: bounded by libvirt's own timeouts.
    if (!m_background.waitForDone(10'000))
        qCWarning(lcConn) << "a libvirt call is still running; not waiting for it";
}

void LibvirtConnection::postToMain(std::function<void()> fn)
{
    std::lock_guard lock(s_registryMutex);
    auto it = s_registry.find(this);
    if (it != s_registry.end()) // else destroyed
        it->second.post(std::move(fn));
}

void LibvirtConnection::postEvent(virDomainPtr dom, EventAction action)
{
    if (action.kind == EventAction::None)
        return;
    const DomainId id = idOf(dom);
    postToMain([this, id, action] { emit domainEvent(id.uuid, id.name, action); });
}

void LibvirtConnection::listRunning(std::function<void(qga::Expected<DomainList>)> fn)
{
    list(VIR_CONNECT_LIST_DOMAINS_RUNNING, std::move(fn));
}

void LibvirtConnection::listKnown(std::function<void(qga::Expected<DomainList>)> fn)
{
    list(0, std::move(fn));
}

void LibvirtConnection::list(unsigned flags, std::function<void(qga::Expected<DomainList>)> fn)
{
    std::shared_ptr<virConnect> conn = connection();
    if (!conn)
        return;
    m_background.submit([this, back = m_life.handle(), conn, flags, fn = std::move(fn)]() {
        DomainList out;
        virDomainPtr* doms = nullptr;
        const int n = virConnectListAllDomains(conn.get(), &doms, flags);
        if (n < 0) {
            qga::Error e = qga::lastLibvirtError("virConnectListAllDomains");
            back.post([this, fn, e] {
                if (!m_stopped)
                    fn(e);
            });
            return;
        }
        for (int i = 0; i < n; ++i) {
            const DomainId id = idOf(doms[i]);
            out.emplace_back(id.uuid.toStdString(), id.name.toStdString());
            virDomainFree(doms[i]);
        }
        std::free(doms);
        back.post([this, fn, out = std::move(out)] {
            if (!m_stopped)
                fn(out);
        });
    });
}

void LibvirtConnection::tryOpen()
{
    if (m_stopped || m_opening)
        return;
    m_opening = true;
    // virConnectOpen may autostart a session daemon or wait on a socket: not
    // on the main thread.
    const std::string uri = m_uri.toStdString();
    m_background.submit([this, back = m_life.handle(), uri]() {
        virConnectPtr c = virConnectOpen(uri.c_str());
        std::string error;
        if (!c) {
            virErrorPtr e = virGetLastError();
            error = e && e->message ? e->message : "unknown error";
        }
        // Closed here if nobody takes it (the connection object went away).
        auto owned = std::shared_ptr<virConnect>(c, [](virConnectPtr p) {
            if (p)
                virConnectClose(p);
        });
        back.post([this, owned, error]() {
            virConnectPtr raw = owned.get();
            if (raw)
                virConnectRef(raw); // onOpened takes its own reference
            onOpened(raw, QString::fromStdString(error));
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
    std::vector<int> ids;
    if (const QString why = registerEvents(raw, ids); !why.isEmpty()) {
        if (std::exchange(m_closeCallbackRegistered, false))
            virConnectUnregisterCloseCallback(raw, &LibvirtConnection::onCloseCallback);
        scheduleRetry("cannot register for domain events: " + why);
        return;
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
    m_quiet.succeeded();
    m_connected = true;
    emit connected();
}

QString LibvirtConnection::registerEvents(virConnectPtr raw, std::vector<int>& ids)
{
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
    for (const auto& ev : events) {
        const int id = virConnectDomainEventRegisterAny(raw, nullptr, ev.id, ev.cb, this, nullptr);
        if (id >= 0) {
            ids.push_back(id);
        } else if (ev.id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
            virErrorPtr e = virGetLastError();
            for (int other : ids)
                virConnectDomainEventDeregisterAny(raw, other);
            ids.clear();
            return QString::fromUtf8(e && e->message ? e->message : "unknown error");
        } else {
            qCDebug(lcConn) << "event" << ev.id << "not supported by this driver";
        }
    }
    return {};
}

void LibvirtConnection::scheduleRetry(const QString& why)
{
    if (m_stopped)
        return;
    if (m_quiet.loud(why, m_clock.monotonicNs()))
        qCWarning(lcConn).noquote()
            << "cannot connect to" << m_uri << ":" << why << "- retrying in" << m_backoffMs / 1000.0
            << "s"
            << (m_quiet.failures() > 1 ? QStringLiteral("(%1 tries so far; repeats are "
                                                        "logged at debug level, hourly)")
                                             .arg(m_quiet.failures())
                                       : QString());
    else
        qCDebug(lcConn).noquote() << "cannot connect to" << m_uri << ":" << why;
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
    static_cast<LibvirtConnection*>(opaque)->postEvent(dom, mapLifecycleEvent(event, detail));
    return 0;
}

void LibvirtConnection::onAgentLifecycle(virConnectPtr, virDomainPtr dom, int state, int reason,
                                         void* opaque) noexcept
{
    static_cast<LibvirtConnection*>(opaque)->postEvent(dom, mapAgentLifecycleEvent(state, reason));
}

// Only our own namespace's element: the job re-reads the policy; mode=off
// makes it a no-op, anything else a (cheap, skip-if-in-sync) check, which is
// also how a resync is requested.
void LibvirtConnection::onMetadata(virConnectPtr, virDomainPtr dom, int type, const char* nsuri,
                                   void* opaque) noexcept
{
    if (type != VIR_DOMAIN_METADATA_ELEMENT || !nsuri || qstrcmp(nsuri, kMetadataUri) != 0)
        return;
    static_cast<LibvirtConnection*>(opaque)->postEvent(
        dom, {EventAction::PolicyChanged, Trigger::PolicyChanged});
}

void LibvirtConnection::onPmWakeup(virConnectPtr, virDomainPtr dom, int, void* opaque) noexcept
{
    static_cast<LibvirtConnection*>(opaque)->postEvent(dom, {EventAction::Sync, Trigger::PmWakeup});
}

// The new utcoffset tells the daemon's own RTC writes (at the adjustment it
// aimed at) from someone else's (docs/design.md §5).
void LibvirtConnection::onRtcChange(virConnectPtr, virDomainPtr dom, long long utcoffset,
                                    void* opaque) noexcept
{
    EventAction a{EventAction::RtcChanged, Trigger::RtcChanged};
    a.rtcOffsetS = utcoffset;
    static_cast<LibvirtConnection*>(opaque)->postEvent(dom, a);
}

void LibvirtConnection::onCloseCallback(virConnectPtr, int reason, void* opaque) noexcept
{
    auto* self = static_cast<LibvirtConnection*>(opaque);
    self->postToMain([self, reason] { self->onClosed(reason); });
}

} // namespace clocksync
