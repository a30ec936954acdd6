// SPDX-License-Identifier: Apache-2.0
// What the daemon needs to know from a domain's live XML, parsed with a real
// XML reader: whether it has a guest-agent channel at all, and whether its
// clock runs at an intended offset (<clock offset='variable'|'absolute'>).
#pragma once

#include <QString>

#include <cstdint>
#include <optional>

namespace clocksync {

struct DomainFacts
{
    bool agentChannel = true; // QEMU: a <channel> whose target is org.qemu.guest_agent.0
    enum class Clock {
        Utc,      // utc, localtime, timezone: the guest's system clock keeps UTC
        Variable, // offset='variable' basis='utc': UTC + adjustment, on purpose
        Absolute, // offset='absolute': a fixed start time, on purpose
    } clock = Clock::Utc;
    int64_t adjustmentNs = 0; // Variable: the live adjustment (libvirt keeps it current)
    // The agent channel's <target state='connected'|'disconnected'>; unknown
    // when there is no channel or libvirt does not say.
    std::optional<bool> agentConnected;
};

// Unparseable XML gives the defaults (treat the domain as today).
DomainFacts parseDomainFacts(const QString& xml);

} // namespace clocksync
