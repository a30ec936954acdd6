// SPDX-License-Identifier: Apache-2.0
// LibvirtAgent and RawLibvirtAgent.
#include "libvirtagent.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <cctype>

namespace qga {

namespace {
// libvirt >= 11.2's agent command errors, by number: the build's headers may
// predate them (Debian 12: libvirt 9.0), the daemon it talks to may not.
constexpr int kErrAgentCommandTimeout = 112; // sent, no answer in time
constexpr int kErrAgentCommandFailed = 113;  // the agent answered with an error

// An agent-side error, in libvirt's wrapping: the agent's own text decides.
// The wrapper is translated ("unable to execute QEMU agent command '%s'"),
// the command's name and the agent's words are not.
ErrorKind agentSideError(const std::string& message)
{
    const ErrorKind kind = protocol::classifyAgentError("", message);
    if (kind != ErrorKind::AgentError || message.find("guest-") != std::string::npos)
        return kind;
    std::string lower = message;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return lower.find("agent") != std::string::npos ? kind : ErrorKind::Transport;
}
} // namespace

ErrorKind libvirtErrorKind(int code, const std::string& message)
{
    switch (code) {
    case kErrAgentCommandTimeout:
        return ErrorKind::Timeout; // it may have run: measured before anything else
    case kErrAgentCommandFailed:
        return protocol::classifyAgentError("", message);
    case VIR_ERR_AGENT_UNRESPONSIVE:
        // libvirt uses this one code for three things: an agent that is not
        // connected (no event will say otherwise until it connects), one that
        // went away mid-command, and one that is connected but did not answer
        // in time ("not available for now") -- which no event will announce
        // when it answers again: that one must be retried, and a set it may
        // have applied measured.
        if (message.find("not connected") != std::string::npos ||
            message.find("disappeared") != std::string::npos ||
            message.find("not configured") != std::string::npos)
            return ErrorKind::AgentUnavailable;
        return ErrorKind::Timeout; // connected, did not answer in time
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_NO_SUPPORT:
        return ErrorKind::Unsupported;
    // Not allowed (polkit, ACL, a read-only connection): refused, as a
    // command blocked in the agent is -- asking again will not change it (not
    // a passing transport failure, retried for ever), and no RTC fallback.
    case VIR_ERR_ACCESS_DENIED:
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_AUTH_FAILED:
        return ErrorKind::CommandDisabled;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_NO_DOMAIN:
        return ErrorKind::NotRunning;
    case VIR_ERR_OPERATION_TIMEOUT:
        return ErrorKind::Timeout;
    case VIR_ERR_AGENT_UNSYNCED:
        return ErrorKind::Protocol;
    case VIR_ERR_OPERATION_FAILED:
    case VIR_ERR_INTERNAL_ERROR:
        // libvirt < 11.2 reports agent-side errors (incl. a blocked command) this way.
        return agentSideError(message);
    default:
        return ErrorKind::Transport;
    }
}

Error lastLibvirtError(const char* what)
{
    virErrorPtr err = virGetLastError();
    if (!err)
        return makeError(ErrorKind::Transport, std::string(what) + ": unknown libvirt error");
    const std::string message = err->message ? err->message : "(no message)";
    return makeError(libvirtErrorKind(err->code, message), std::string(what) + ": " + message);
}

// ---- LibvirtAgent --------------------------------------------------------

LibvirtAgent::LibvirtAgent(std::shared_ptr<virDomain> domain, const Clock& clock,
                           int timeoutSeconds)
    : m_domain(std::move(domain)), m_clock(clock), m_timeoutSeconds(timeoutSeconds)
{
}

void LibvirtAgent::applyTimeout()
{
    if (m_timeoutApplied)
        return;
    // Best effort: older drivers lack it; the call then uses libvirt's default.
    if (virDomainAgentSetResponseTimeout(m_domain.get(), m_timeoutSeconds, 0) == 0)
        m_timeoutApplied = true;
}

Expected<void> LibvirtAgent::ping()
{
    // The typed API has no ping; guest-ping through the pass-through.
    return RawLibvirtAgent(m_domain, m_clock, m_timeoutSeconds).ping();
}

Expected<AgentInfo> LibvirtAgent::info()
{
    return RawLibvirtAgent(m_domain, m_clock, m_timeoutSeconds).info();
}

Expected<TimeSample> LibvirtAgent::getTime()
{
    applyTimeout();
    long long seconds = 0;
    unsigned int nseconds = 0;
    TimeSample sample;
    sample.hostBeforeNs = m_clock.realtimeNs();
    int rc = virDomainGetTime(m_domain.get(), &seconds, &nseconds, 0);
    sample.hostAfterNs = m_clock.realtimeNs();
    if (rc < 0)
        return lastLibvirtError("virDomainGetTime");
    // Before 1970 libvirt splits a negative time with C's truncating
    // division: the remainder is <= 0, stored in the unsigned nseconds.
    const int64_t sub =
        nseconds < 1'000'000'000 ? int64_t(nseconds) : int64_t(static_cast<int32_t>(nseconds));
    if (seconds > INT64_MAX / 1'000'000'000 - 1 || seconds < INT64_MIN / 1'000'000'000 + 1 ||
        sub <= -1'000'000'000 || (sub < 0 && seconds > 0))
        return makeError(ErrorKind::Protocol, "guest time out of range");
    sample.guestNs = int64_t(seconds) * 1'000'000'000 + sub;
    return sample;
}

Expected<void> LibvirtAgent::setTime(int64_t guestNs)
{
    applyTimeout();
    if (guestNs < 0)
        return makeError(ErrorKind::Internal, "refusing to set a negative time");
    if (virDomainSetTime(m_domain.get(), guestNs / 1'000'000'000,
                         static_cast<unsigned int>(guestNs % 1'000'000'000), 0) < 0)
        return lastLibvirtError("virDomainSetTime");
    return {};
}

Expected<void> LibvirtAgent::setTimeFromRtc()
{
    applyTimeout();
    if (virDomainSetTime(m_domain.get(), 0, 0, VIR_DOMAIN_TIME_SYNC) < 0)
        return lastLibvirtError("virDomainSetTime(sync)");
    return {};
}

// ---- RawLibvirtAgent -----------------------------------------------------

RawLibvirtAgent::RawLibvirtAgent(std::shared_ptr<virDomain> domain, const Clock& clock,
                                 int timeoutSeconds)
    : m_domain(std::move(domain)), m_clock(clock), m_timeoutSeconds(timeoutSeconds)
{
}

Expected<std::string> RawLibvirtAgent::command(const std::string& request)
{
    CString reply(virDomainQemuAgentCommand(m_domain.get(), request.c_str(), m_timeoutSeconds, 0));
    if (!reply)
        return lastLibvirtError("virDomainQemuAgentCommand");
    return std::string(reply.get());
}

Expected<void> RawLibvirtAgent::commandEmpty(const std::string& request)
{
    Expected<std::string> reply = command(request);
    if (!reply)
        return reply.error();
    return protocol::parseEmptyReply(*reply);
}

Expected<void> RawLibvirtAgent::ping()
{
    return commandEmpty(protocol::commandRequest("guest-ping"));
}

Expected<AgentInfo> RawLibvirtAgent::info()
{
    Expected<std::string> reply = command(protocol::commandRequest("guest-info"));
    if (!reply)
        return reply.error();
    return protocol::parseInfoReply(*reply);
}

Expected<TimeSample> RawLibvirtAgent::getTime()
{
    TimeSample sample;
    sample.hostBeforeNs = m_clock.realtimeNs();
    Expected<std::string> reply = command(protocol::commandRequest("guest-get-time"));
    sample.hostAfterNs = m_clock.realtimeNs();
    if (!reply)
        return reply.error();
    Expected<int64_t> guest = protocol::parseGetTimeReply(*reply);
    if (!guest)
        return guest.error();
    sample.guestNs = *guest;
    return sample;
}

Expected<void> RawLibvirtAgent::setTime(int64_t guestNs)
{
    return commandEmpty(protocol::setTimeRequest(guestNs));
}

Expected<void> RawLibvirtAgent::setTimeFromRtc()
{
    return commandEmpty(protocol::setTimeFromRtcRequest());
}

} // namespace qga
