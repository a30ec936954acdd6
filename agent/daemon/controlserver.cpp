// SPDX-License-Identifier: Apache-2.0
// ControlServer.
#include "controlserver.h"

#include <QDir>
#include <QFileInfo>
#include <QLoggingCategory>
#include <QPointer>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

Q_LOGGING_CATEGORY(lcControl, "clocksync.control")

namespace clocksync {

ControlServer::ControlServer(QString path, std::optional<gid_t> group, QObject* parent)
    : QObject(parent), m_path(std::move(path)), m_group(group)
{
}

ControlServer::~ControlServer()
{
    std::vector<int> ids;
    for (const auto& [id, c] : m_clients)
        ids.push_back(id);
    for (int id : ids)
        drop(id);
    if (m_listenFd >= 0) {
        m_acceptN.reset();
        ::close(m_listenFd);
        ::unlink(m_path.toLocal8Bit().constData());
    }
    if (m_lockFd >= 0)
        ::close(m_lockFd); // releases the lock; the file stays (unlinking it would race)
}

bool ControlServer::peerAllowed(uid_t uid, gid_t gid, std::optional<gid_t> group,
                                const std::vector<gid_t>& groups)
{
    if (uid == 0 || uid == ::geteuid())
        return true;
    if (!group)
        return false;
    if (gid == *group)
        return true;
    // The peer's own supplementary groups, from the kernel (peerGroups): an
    // NSS look-up could block the main loop for seconds on LDAP or SSSD.
    return std::find(groups.begin(), groups.end(), *group) != groups.end();
}

std::vector<gid_t> ControlServer::peerGroups(int fd)
{
    std::vector<gid_t> groups(64);
    for (int tries = 0; tries < 2; ++tries) {
        auto len = socklen_t(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            return groups;
        }
        if (errno != ERANGE)
            return {};
        groups.resize(len / sizeof(gid_t) + 1); // the size the kernel asked for
    }
    return {};
}

std::size_t ControlServer::pendingReplyBytes() const
{
    std::size_t n = 0;
    for (const auto& [id, c] : m_clients)
        n += c.out.size();
    return n;
}

QString ControlServer::listen()
{
    const QByteArray p = m_path.toLocal8Bit();
    sockaddr_un addr{};
    if (std::size_t(p.size()) >= sizeof(addr.sun_path))
        return "socket path too long: " + m_path;
    QDir().mkpath(QFileInfo(m_path).absolutePath());
    const QByteArray lockPath = p + ".lock";
    m_lockFd = ::open(lockPath.constData(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_lockFd < 0)
        return QStringLiteral("%1: %2").arg(QString::fromLocal8Bit(lockPath),
                                            QString::fromLocal8Bit(std::strerror(errno)));
    if (::flock(m_lockFd, LOCK_EX | LOCK_NB) < 0) {
        const int err = errno;
        char pid[32] = {};
        (void)!::pread(m_lockFd, pid, sizeof(pid) - 1, 0);
        ::close(m_lockFd);
        m_lockFd = -1;
        if (err != EWOULDBLOCK)
            return QStringLiteral("%1: %2").arg(QString::fromLocal8Bit(lockPath),
                                                QString::fromLocal8Bit(std::strerror(err)));
        m_anotherInstance = true;
        return QStringLiteral("another virt-clocksyncd (pid %1) already serves %2")
            .arg(QString::fromLatin1(pid).trimmed(), m_path);
    }
    const QByteArray me = QByteArray::number(qint64(::getpid())) + '\n';
    if (::ftruncate(m_lockFd, 0) < 0 ||
        ::pwrite(m_lockFd, me.constData(), std::size_t(me.size()), 0) < 0)
        qCWarning(lcControl) << "cannot write the pid to" << lockPath << ":"
                             << std::strerror(errno);
    ::unlink(p.constData()); // a stale socket of an earlier run (we hold the lock)
    m_listenFd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m_listenFd < 0)
        return QString::fromLocal8Bit(std::strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.constData(), std::size_t(p.size()) + 1);
    const mode_t old = ::umask(0117); // socket created 0660
    const int rc = ::bind(m_listenFd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::umask(old);
    if (rc < 0 || ::listen(m_listenFd, 16) < 0)
        return QStringLiteral("%1: %2").arg(m_path, QString::fromLocal8Bit(std::strerror(errno)));
    if (m_group && ::chown(p.constData(), uid_t(-1), *m_group) < 0)
        qCWarning(lcControl) << "cannot give the control socket to the group:"
                             << std::strerror(errno);
    m_acceptN = std::make_unique<QSocketNotifier>(m_listenFd, QSocketNotifier::Read);
    connect(m_acceptN.get(), &QSocketNotifier::activated, this, &ControlServer::onAccept);
    return {};
}

void ControlServer::onAccept()
{
    for (;;) {
        const int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        ucred cred{};
        socklen_t len = sizeof(cred);
        const int id = m_nextId++;
        const bool full = m_clients.size() >= kMaxControlClients;
        Client& c = m_clients[id];
        c.fd = fd;
        if (full) {
            qCWarning(lcControl) << "refused control connection:" << kMaxControlClients
                                 << "clients already connected";
            c.closing = true;
            send(id, controlError("too many clients"));
            continue;
        }
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
            !peerAllowed(cred.uid, cred.gid, m_group, peerGroups(fd))) {
            qCWarning(lcControl) << "refused control connection from uid" << cred.uid << "pid"
                                 << cred.pid;
            c.closing = true;
            send(id, controlError("permission denied: only root, the daemon's user or the control "
                                  "group may use this socket"));
            continue;
        }
        c.readN = std::make_unique<QSocketNotifier>(fd, QSocketNotifier::Read);
        connect(c.readN.get(), &QSocketNotifier::activated, this, [this, id] { onReadable(id); });
        c.idle = std::make_unique<QTimer>();
        c.idle->setSingleShot(true);
        connect(c.idle.get(), &QTimer::timeout, this, [this, id] { drop(id); });
        c.idle->start(m_idleMs);
    }
}

void ControlServer::onReadable(int id)
{
    if (readInput(id))
        handleLines(id);
}

// At most one request's worth per wakeup: the notifier fires again while
// more is there. False if the client is gone or being closed.
bool ControlServer::readInput(int id)
{
    auto it = m_clients.find(id);
    if (it == m_clients.end())
        return false;
    Client& c = it->second;
    char buf[4096];
    std::size_t taken = 0;
    while (taken < kMaxControlRequest) {
        const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
        if (n > 0) {
            taken += std::size_t(n);
            c.in.append(buf, std::size_t(n));
            if (c.in.size() > kMaxControlRequest + 1 && c.in.find('\n') == std::string::npos) {
                c.closing = true;
                c.readN->setEnabled(false);
                send(id, controlError("request exceeds 64 KiB"));
                return false;
            }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            drop(id);
            return false;
        }
        if (errno == EAGAIN)
            break;
    }
    return true;
}

// Every complete line is a request; a client that sends faster than it
// reads is paused.
void ControlServer::handleLines(int id)
{
    for (;;) {
        // Any reply may find the client gone (and drop it): look it up each time.
        auto it = m_clients.find(id);
        if (it == m_clients.end())
            return;
        Client& live = it->second;
        if (live.out.size() > kMaxPendingReplies) {
            // Replies pile up unread: stop reading this client until it
            // catches up (onWritable resumes it); its next requests wait here.
            if (live.readN)
                live.readN->setEnabled(false);
            armIdle(live);
            return;
        }
        const std::size_t nl = live.in.find('\n');
        if (nl == std::string::npos)
            return armIdle(live);
        const std::string line = live.in.substr(0, nl);
        live.in.erase(0, nl + 1);
        qga::Expected<ControlRequest> req = parseControlRequest(line);
        if (!req) {
            send(id, controlError(req.error().message));
            continue;
        }
        if (!m_handler) {
            send(id, controlError("not ready"));
            continue;
        }
        // The reply may come later (sync waits for results); the client may be gone by then.
        ++live.inFlight;
        QPointer<ControlServer> self(this);
        m_handler(*req, [self, id](const nlohmann::json& j) {
            if (self)
                self->answer(id, j);
        });
    }
}

void ControlServer::armIdle(Client& c)
{
    // Idle means: nothing asked that is still being worked on.
    if (c.inFlight > 0)
        c.idle->stop();
    else
        c.idle->start(m_idleMs);
}

void ControlServer::answer(int id, const nlohmann::json& j)
{
    auto it = m_clients.find(id);
    if (it == m_clients.end())
        return;
    if (it->second.inFlight > 0 && --it->second.inFlight == 0 && it->second.idle)
        armIdle(it->second);
    send(id, j);
}

void ControlServer::send(int id, const nlohmann::json& j)
{
    auto it = m_clients.find(id);
    if (it == m_clients.end())
        return;
    Client& c = it->second;
    c.out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    onWritable(id);
}

void ControlServer::onWritable(int id)
{
    auto it = m_clients.find(id);
    if (it == m_clients.end())
        return;
    Client& c = it->second;
    while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.out.erase(0, std::size_t(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!c.writeN) {
                c.writeN = std::make_unique<QSocketNotifier>(c.fd, QSocketNotifier::Write);
                connect(c.writeN.get(), &QSocketNotifier::activated, this,
                        [this, id] { onWritable(id); });
            }
            c.writeN->setEnabled(true);
            return;
        }
        drop(id); // the client went away
        return;
    }
    if (c.writeN)
        c.writeN->setEnabled(false);
    if (c.closing)
        return drop(id);
    if (c.readN && !c.readN->isEnabled()) {
        c.readN->setEnabled(true); // caught up: read again, and what is buffered
        onReadable(id);
    }
}

void ControlServer::drop(int id)
{
    auto it = m_clients.find(id);
    if (it == m_clients.end())
        return;
    Client& c = it->second;
    // We may be inside one of these objects' own signals: delete them later.
    if (c.readN) {
        c.readN->setEnabled(false);
        c.readN.release()->deleteLater();
    }
    if (c.writeN) {
        c.writeN->setEnabled(false);
        c.writeN.release()->deleteLater();
    }
    if (c.idle) {
        c.idle->stop();
        c.idle.release()->deleteLater();
    }
    ::close(c.fd);
    m_clients.erase(it);
}

} // namespace clocksync
