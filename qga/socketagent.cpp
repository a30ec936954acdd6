// SPDX-License-Identifier: Apache-2.0
// SocketAgent: blocking POSIX socket I/O with poll() deadlines, so it works on
// any worker thread without an event loop.
#include "socketagent.h"

#include "lineio.h"

#include <cerrno>
#include <cstring>
#include <random>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace qga {

namespace {

int64_t randomSyncId()
{
    // guest-sync ids are JSON integers; stay well inside 2^53.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return int64_t(rng() % (int64_t(1) << 52)) + 1;
}

std::string errnoText()
{
    return std::strerror(errno);
}

} // namespace

SocketAgent::SocketAgent(std::string socketPath, const Clock& clock,
                         std::chrono::milliseconds timeout)
    : m_path(std::move(socketPath)), m_clock(clock), m_timeout(timeout)
{
}

SocketAgent::~SocketAgent()
{
    disconnect();
}

void SocketAgent::disconnect()
{
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
    m_buffer.clear();
}

int64_t SocketAgent::deadline() const
{
    return m_clock.monotonicNs() + std::chrono::nanoseconds(m_timeout).count();
}

Expected<void> SocketAgent::ensureConnected(int64_t deadlineNs)
{
    if (m_fd >= 0)
        return {};
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (m_path.size() >= sizeof(addr.sun_path))
        return makeError(ErrorKind::Transport, "socket path too long: " + m_path);
    std::memcpy(addr.sun_path, m_path.c_str(), m_path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return makeError(ErrorKind::Transport, "socket: " + errnoText());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
        std::string why = errnoText();
        ::close(fd);
        return makeError(ErrorKind::AgentUnavailable, "cannot connect to " + m_path + ": " + why);
    }
    m_fd = fd;
    m_buffer.clear();
    Expected<void> hs = handshake(deadlineNs);
    if (!hs)
        disconnect();
    return hs;
}

Expected<void> SocketAgent::handshake(int64_t deadlineNs)
{
    const int64_t id = randomSyncId();
    if (Expected<void> w = writeAll(protocol::syncDelimitedRequest(id), deadlineNs); !w)
        return w;
    // Everything before our id's reply is stale (replies to requests that
    // timed out, or a parse error for the 0xFF reset byte): skip it.
    for (;;) {
        Expected<std::string> line = readLine(deadlineNs);
        if (!line)
            return line.error();
        Expected<int64_t> got = protocol::parseSyncReply(*line);
        if (got && *got == id) {
            ++m_handshakes;
            return {};
        }
    }
}

Expected<void> SocketAgent::writeAll(const std::string& data, int64_t deadlineNs)
{
    return writeAllBy(m_fd, data, deadlineNs, m_clock, "the guest agent");
}

Expected<std::string> SocketAgent::readLine(int64_t deadlineNs)
{
    return readLineBy(m_fd, m_buffer, protocol::takeReplyLine, deadlineNs, m_clock, "guest agent");
}

Expected<std::string> SocketAgent::call(const std::string& request)
{
    const int64_t dl = deadline();
    if (Expected<void> c = ensureConnected(dl); !c)
        return c.error();
    Expected<void> w = writeAll(request, dl);
    if (!w) {
        disconnect();
        return w.error();
    }
    Expected<std::string> reply = readLine(dl);
    if (!reply)
        disconnect(); // a late reply would be stale: start over next time
    return reply;
}

Expected<void> SocketAgent::callEmpty(const std::string& request)
{
    std::lock_guard lock(m_mutex);
    Expected<std::string> reply = call(request);
    if (!reply)
        return reply.error();
    return protocol::parseEmptyReply(*reply);
}

Expected<void> SocketAgent::ping()
{
    return callEmpty(protocol::commandRequest("guest-ping"));
}

Expected<AgentInfo> SocketAgent::info()
{
    std::lock_guard lock(m_mutex);
    Expected<std::string> reply = call(protocol::commandRequest("guest-info"));
    if (!reply)
        return reply.error();
    return protocol::parseInfoReply(*reply);
}

Expected<TimeSample> SocketAgent::getTime()
{
    std::lock_guard lock(m_mutex);
    const int64_t dl = deadline();
    if (Expected<void> c = ensureConnected(dl); !c)
        return c.error();
    const std::string request = protocol::commandRequest("guest-get-time");
    TimeSample sample;
    sample.hostBeforeNs = m_clock.realtimeNs();
    Expected<void> w = writeAll(request, dl);
    if (!w) {
        disconnect();
        return w.error();
    }
    Expected<std::string> reply = readLine(dl);
    sample.hostAfterNs = m_clock.realtimeNs();
    if (!reply) {
        disconnect();
        return reply.error();
    }
    Expected<int64_t> guest = protocol::parseGetTimeReply(*reply);
    if (!guest)
        return guest.error();
    sample.guestNs = *guest;
    return sample;
}

Expected<void> SocketAgent::setTime(int64_t guestNs)
{
    return callEmpty(protocol::setTimeRequest(guestNs));
}

Expected<void> SocketAgent::setTimeFromRtc()
{
    return callEmpty(protocol::setTimeFromRtcRequest());
}

} // namespace qga
