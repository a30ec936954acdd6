// SPDX-License-Identifier: Apache-2.0
// What the daemon and the CLI need to know from a domain's live XML, parsed
// with a real XML reader: whether it has a guest-agent channel at all, and
// at what time its clock is meant to run (docs/design.md, "Intended time").
#pragma once

#include "expected.h"
#include "policy.h"

#include <QString>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace clocksync {

// libvirt keeps a variable clock's live adjustment to the RTC's whole second,
// and hwclock -w rounds either way: within this, two adjustments are one.
constexpr int64_t kRtcSecondNs = 1'000'000'000;
// Beyond this an adjustment (or an RTC offset) is not a clock setting but a
// corrupt value, and host time + it would overflow 64-bit nanoseconds.
constexpr int64_t kMaxAdjustmentS = 100LL * 366 * 86'400;

struct DomainFacts
{
    bool agentChannel = true; // QEMU: a <channel> whose target is org.qemu.guest_agent.0
    enum class Clock {
        Utc,      // utc, localtime, timezone: the guest's system clock keeps UTC
        Variable, // offset='variable': UTC + adjustment, on purpose
        Absolute, // offset='absolute': a fixed start time, on purpose
    } clock = Clock::Utc;
    // Variable: the adjustment from host UTC. libvirt keeps it current in the
    // live XML; basis='localtime' (an inactive definition) is converted with
    // the host's UTC offset, as libvirt does when it starts the guest.
    int64_t adjustmentNs = 0;
    // Variable: the adjustment the domain's definition was started with (its
    // inactive XML), when known. libvirt tracks the live one through the
    // guest's RTC writes, in whole seconds -- busybox's hwclock rounds to the
    // nearest, so after a set to host + N the live value reads N or N + 1.
    std::optional<int64_t> configuredAdjustmentNs;
    // Variable, basis='localtime': the RTC runs in the host's local time, so
    // it is ahead of the guest's system clock by the host's UTC offset. The
    // system clock (what guest-set-time sets) is meant to run at UTC + the
    // adjustment; libvirt's live XML converts to basis='utc', adding the
    // offset, and withConfiguredClock takes it out again.
    bool localtimeBasis = false;
    int64_t rtcAheadNs = 0;
    // The agent channel's <target state='connected'|'disconnected'>; unknown
    // when there is no channel or libvirt does not say.
    std::optional<bool> agentConnected;
};

// XML that cannot be parsed, or a <clock> this code does not understand, is
// an error: the caller leaves the guest alone. hostUtcOffsetS: the host's
// local time minus UTC, for basis='localtime'.
qga::Expected<DomainFacts> parseDomainFacts(const QString& xml, int64_t hostUtcOffsetS = 0);

// The live facts, with the configured adjustment taken from the inactive
// definition's facts (if it has a variable clock).
DomainFacts withConfiguredClock(DomainFacts live, const DomainFacts& inactive);
// What a backend returns: the live XML's facts, with the configured clock of
// the inactive definition, asked for only when the clock is variable (nullopt:
// a transient domain, whose "inactive" XML libvirt answers with the live one,
// or one that cannot be read -- the live value is all there is).
qga::Expected<DomainFacts> composeFacts(const QString& liveXml,
                                        const std::function<std::optional<QString>()>& inactiveXml,
                                        int64_t hostUtcOffsetS);

// The time a sync aims the guest at, from its clock and the policy's mode:
// host UTC + shiftNs, or a reason to leave the guest alone. The one rule
// the daemon and every CLI path use.
struct IntendedTime
{
    std::optional<std::string> leaveAlone;
    int64_t shiftNs = 0;
    std::string note; // what the result says about the target, empty for host UTC
};
IntendedTime intendedTime(const DomainFacts& facts, SyncMode mode);

} // namespace clocksync
