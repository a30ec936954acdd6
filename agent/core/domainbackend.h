// SPDX-License-Identifier: Apache-2.0
// What the scheduler's workers need from the hypervisor side, behind an
// interface so the tracker and scheduler run against fakes in tests.
// Implementations must be thread-safe: calls come from worker threads.
#pragma once

#include "domainxml.h"
#include "expected.h"
#include "guestagent.h"
#include "policy.h"

#include <memory>
#include <string>

namespace clocksync {

class DomainBackend
{
public:
    virtual ~DomainBackend() = default;
    // The domain's metadata policy; an empty override if it has none.
    virtual qga::Expected<PolicyParse> readPolicy(const std::string& uuid) = 0;
    // Whether the domain runs; an error when libvirt cannot tell (e.g. the
    // connection is gone), which is not the same as "not running".
    virtual qga::Expected<bool> isRunning(const std::string& uuid) = 0;
    virtual qga::Expected<std::unique_ptr<qga::GuestAgent>> openAgent(const std::string& uuid) = 0;
    // From the live XML: agent channel present, intended clock offset.
    virtual qga::Expected<DomainFacts> facts(const std::string& uuid) = 0;
    // The domain is gone: drop what is remembered of it (main thread).
    virtual void forget(const std::string& /*uuid*/) {}
};

} // namespace clocksync
