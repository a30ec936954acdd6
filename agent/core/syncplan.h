// SPDX-License-Identifier: Apache-2.0
// Whether and toward what time a guest is synced, from what libvirt says of
// it: its policy metadata and its live XML. Fails closed: anything that
// cannot be read or understood leaves the guest alone. The daemon's jobs and
// the CLI's direct syncs both decide here (docs/design.md, "Intended time").
#pragma once

#include "domainxml.h"
#include "expected.h"
#include "guestagent.h"
#include "policy.h"
#include "syncresult.h"
#include "trigger.h"

#include <memory>
#include <optional>
#include <string>

namespace clocksync {

struct SyncPlan
{
    SyncPolicy policy;                         // the defaults with the domain's override
    std::optional<PolicyOverride> own;         // the domain's override, when it could be read
    std::optional<std::string> skip;           // leave the guest alone, and why
    bool configProblem = false;                // skip: its metadata or XML is unreadable
    std::optional<std::string> nextBootPolicy; // PolicyParse::nextBoot
    IntendedTime target;                       // when not skipped
};

// Why a sync must not touch this guest at all (policy, no agent channel, a
// clock whose intended time is its own), or nullopt.
std::optional<std::string> skipReason(Trigger t, const SyncPolicy& p, const DomainFacts& facts);

// policy and facts as the backend returned them (a NotRunning error is the
// caller's to handle before: the domain is gone, not misconfigured).
// The agent a sync toward `target` talks to: the guest's own, seen through
// the intended offset when there is one (ShiftedAgent).
std::unique_ptr<qga::GuestAgent> aimedAt(std::unique_ptr<qga::GuestAgent> agent,
                                         const IntendedTime& target);
// Says in the result's note what it was aimed at, when that is not host UTC.
void noteTarget(SyncResult& r, const IntendedTime& target);

SyncPlan planSync(Trigger t, const SyncPolicy& defaults, const qga::Expected<PolicyParse>& policy,
                  const qga::Expected<DomainFacts>& facts);

} // namespace clocksync
