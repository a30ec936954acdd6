// SPDX-License-Identifier: Apache-2.0
// Control-socket client over qga's deadline-bound line I/O.
#include "controlclient.h"

#include "clock.h"
#include "controlprotocol.h"
#include "lineio.h"

#include <QFileInfo>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace clocksync::cli {

using nlohmann::json;

QString controlPath(const QString& explicitPath, const QString& configured, const QString& uri)
{
    if (!explicitPath.isEmpty())
        return explicitPath;
    if (!configured.isEmpty())
        return configured;
    QString u = uri;
    if (u.isEmpty())
        u = qEnvironmentVariable("LIBVIRT_DEFAULT_URI");
    const bool chosen = !u.isEmpty(); // -c or LIBVIRT_DEFAULT_URI named a libvirt
    if (u.isEmpty())
        u = ::geteuid() == 0 ? "qemu:///system" : "qemu:///session";
    const QString path = defaultControlPath(u);
    // A user's session has no daemon, the host's system one runs: a member of
    // its control-group reaches it without flags (virsh's default URI for a
    // non-root user is the session one, the daemon's usually the system one).
    // Never when a libvirt was named: -c qemu:///session must not reach the
    // system daemon, which would sync a system guest of the same name.
    const QString system = defaultControlPath("qemu:///system");
    if (!chosen && path != system && !QFileInfo::exists(path) && QFileInfo::exists(system) &&
        ::access(system.toLocal8Bit().constData(), W_OK) == 0) // else: its session, directly
        return system;
    return path;
}

json daemonRequest(const char* command)
{
    return {{"version", kControlVersion}, {"command", command}};
}

namespace {

// A connected socket, or -1 with errno set.
int connectTo(const QString& path)
{
    const QByteArray p = path.toLocal8Bit();
    sockaddr_un addr{};
    if (std::size_t(p.size()) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.constData(), std::size_t(p.size()) + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

} // namespace

DaemonReply callDaemon(const QString& path, const json& request, int timeoutMs)
{
    DaemonReply r;
    const int fd = connectTo(path);
    if (fd < 0) {
        const int e = errno;
        r.absent = e == ENOENT || e == ECONNREFUSED;
        r.error = QStringLiteral("cannot reach the daemon at %1: %2")
                      .arg(path, QString::fromLocal8Bit(std::strerror(e)));
        if (e == EACCES || e == EPERM)
            r.error += QStringLiteral(" (the socket is for root and the daemon's control-group: "
                                      "run as root, or join that group)");
        return r;
    }
    r.reachable = true;
    const qga::Clock& clock = qga::SystemClock::instance();
    const int64_t deadline = clock.monotonicNs() + int64_t(timeoutMs) * 1'000'000;
    std::string buffer;
    qga::Expected<std::string> line = qga::makeError(qga::ErrorKind::Internal, "");
    if (auto w = qga::writeAllBy(fd, request.dump() + "\n", deadline, clock, "the daemon"); !w)
        line = w.error();
    else
        line =
            qga::readLineBy(fd, buffer, qga::newlineTaker(64 << 20), deadline, clock, "the daemon");
    ::close(fd);
    if (!line) {
        r.error = QString::fromStdString(line.error().message);
        return r;
    }
    r.reply = json::parse(*line, nullptr, false);
    if (r.reply.is_discarded() || !r.reply.is_object())
        r.error = "the daemon sent a malformed reply";
    else if (!r.reply.value("ok", false))
        r.error = QString::fromStdString(r.reply.value("error", std::string("daemon error")));
    return r;
}

QString unreachable(const DaemonReply& r)
{
    return r.error + (r.absent ? " (is virt-clocksyncd running?)" : "");
}

} // namespace clocksync::cli
