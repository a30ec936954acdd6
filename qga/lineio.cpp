// SPDX-License-Identifier: Apache-2.0
// Line I/O with deadlines.
#include "lineio.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

namespace qga {

namespace {

int remainingMs(int64_t deadlineNs, const Clock& clock)
{
    const int64_t left = deadlineNs - clock.monotonicNs();
    if (left <= 0)
        return 0;
    return int((left + 999'999) / 1'000'000);
}

Error transportError(const char* call)
{
    return makeError(ErrorKind::Transport, std::string(call) + ": " + std::strerror(errno));
}

// 1: ready; 0: timed out; -1: poll failed (errno set).
int waitFor(int fd, short events, int64_t deadlineNs, const Clock& clock)
{
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, remainingMs(deadlineNs, clock));
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n > 0 ? 1 : 0;
    }
}

} // namespace

TakeLine newlineTaker(std::size_t maxBytes)
{
    return [maxBytes](std::string& buffer) -> std::optional<Expected<std::string>> {
        const std::size_t nl = buffer.find('\n');
        if (nl == std::string::npos) {
            if (buffer.size() > maxBytes)
                return Expected<std::string>(makeError(ErrorKind::Protocol, "line too long"));
            return std::nullopt;
        }
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        return Expected<std::string>(std::move(line));
    };
}

Expected<void> writeAllBy(int fd, std::string_view data, int64_t deadlineNs, const Clock& clock,
                          const char* peer)
{
    std::size_t done = 0;
    while (done < data.size()) {
        const int ready = waitFor(fd, POLLOUT, deadlineNs, clock);
        if (ready < 0)
            return transportError("poll");
        if (ready == 0)
            return makeError(ErrorKind::Timeout, std::string("timed out sending to ") + peer);
        const ssize_t w = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return transportError("send");
        done += std::size_t(w);
    }
    return {};
}

Expected<std::string> readLineBy(int fd, std::string& buffer, const TakeLine& take,
                                 int64_t deadlineNs, const Clock& clock, const char* peer)
{
    for (;;) {
        if (std::optional<Expected<std::string>> line = take(buffer))
            return std::move(*line);
        const int ready = waitFor(fd, POLLIN, deadlineNs, clock);
        if (ready < 0)
            return transportError("poll");
        if (ready == 0)
            return makeError(ErrorKind::Timeout, std::string(peer) + " did not reply in time");
        char chunk[4096];
        const ssize_t r = ::recv(fd, chunk, sizeof(chunk), 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return transportError("recv");
        if (r == 0)
            return makeError(ErrorKind::Transport, std::string(peer) + " closed the connection");
        buffer.append(chunk, std::size_t(r));
    }
}

} // namespace qga
