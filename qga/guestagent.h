// SPDX-License-Identifier: Apache-2.0
// The guest-agent interface the sync engine talks to. Implementations block
// and must only be called from worker threads; each call has its own timeout.
#pragma once

#include "expected.h"
#include "protocol.h"
#include "sample.h"

#include <string>

namespace qga {

class GuestAgent
{
public:
    virtual ~GuestAgent() = default;

    // Short name of the transport ("libvirt", "libvirt-raw", "socket").
    virtual std::string transport() const = 0;
    virtual Expected<void> ping() = 0;
    virtual Expected<AgentInfo> info() = 0;
    // guest-get-time bracketed by host clock readings.
    virtual Expected<TimeSample> getTime() = 0;
    // guest-set-time to an absolute time in nanoseconds since the epoch.
    virtual Expected<void> setTime(int64_t guestNs) = 0;
    // guest-set-time without a time: the guest re-reads its RTC.
    virtual Expected<void> setTimeFromRtc() = 0;
};

} // namespace qga
