// SPDX-License-Identifier: Apache-2.0
// Direct connection to a QGA unix socket (a QEMU chardev, or qemu-ga's own
// unix-listen socket). Handshakes with guest-sync-delimited and a random id so
// stale replies from earlier, timed-out requests are discarded; every call has
// a deadline; after any failure the next call reconnects.
#pragma once

#include "clock.h"
#include "guestagent.h"

#include <chrono>
#include <mutex>
#include <string>

namespace qga {

class SocketAgent final : public GuestAgent
{
public:
    SocketAgent(std::string socketPath, const Clock& clock,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    ~SocketAgent() override;
    SocketAgent(const SocketAgent&) = delete;
    SocketAgent& operator=(const SocketAgent&) = delete;

    std::string transport() const override { return "socket"; }
    Expected<void> ping() override;
    Expected<AgentInfo> info() override;
    Expected<TimeSample> getTime() override;
    Expected<void> setTime(int64_t guestNs) override;
    Expected<void> setTimeFromRtc() override;

    // Drops the connection; the next call reconnects and handshakes again.
    void disconnect();
    // Number of successful guest-sync handshakes so far (for tests/metrics).
    int handshakes() const { return m_handshakes; }

private:
    Expected<void> ensureConnected(int64_t deadlineNs);
    Expected<void> handshake(int64_t deadlineNs);
    Expected<void> writeAll(const std::string& data, int64_t deadlineNs);
    Expected<std::string> readLine(int64_t deadlineNs);
    Expected<std::string> call(const std::string& request);
    Expected<void> callEmpty(const std::string& request); // locks; for {} replies
    int64_t deadline() const;

    std::string m_path;
    const Clock& m_clock;
    std::chrono::milliseconds m_timeout;
    std::mutex m_mutex; // one request at a time on the connection
    int m_fd = -1;
    std::string m_buffer;
    int m_handshakes = 0;
};

} // namespace qga
