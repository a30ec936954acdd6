// SPDX-License-Identifier: Apache-2.0
// Guest-agent transports through libvirt: the typed time API (default; one
// agent round trip per call) and the raw virDomainQemuAgentCommand pass-through.
#pragma once

#include "clock.h"
#include "guestagent.h"
#include "libvirthandles.h"

#include <memory>

namespace qga {

class LibvirtAgent final : public GuestAgent
{
public:
    // timeoutSeconds bounds every agent command (libvirt waits forever by default).
    LibvirtAgent(std::shared_ptr<virDomain> domain, const Clock& clock, int timeoutSeconds);

    std::string transport() const override { return "libvirt"; }
    Expected<void> ping() override;
    Expected<AgentInfo> info() override;
    Expected<TimeSample> getTime() override;
    Expected<void> setTime(int64_t guestNs) override;
    Expected<void> setTimeFromRtc() override;

private:
    void applyTimeout();

    std::shared_ptr<virDomain> m_domain;
    const Clock& m_clock;
    int m_timeoutSeconds;
    bool m_timeoutApplied = false;
};

class RawLibvirtAgent final : public GuestAgent
{
public:
    RawLibvirtAgent(std::shared_ptr<virDomain> domain, const Clock& clock, int timeoutSeconds);

    std::string transport() const override { return "libvirt-raw"; }
    Expected<void> ping() override;
    Expected<AgentInfo> info() override;
    Expected<TimeSample> getTime() override;
    Expected<void> setTime(int64_t guestNs) override;
    Expected<void> setTimeFromRtc() override;

private:
    Expected<std::string> command(const std::string& request);
    Expected<void> commandEmpty(const std::string& request); // for {} replies

    std::shared_ptr<virDomain> m_domain;
    const Clock& m_clock;
    int m_timeoutSeconds;
};

} // namespace qga
