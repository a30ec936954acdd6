// SPDX-License-Identifier: Apache-2.0
#include "syncplan.h"

#include "shiftedagent.h"

namespace clocksync {

std::optional<std::string> skipReason(Trigger t, const SyncPolicy& p, const DomainFacts& facts)
{
    if (t == Trigger::DriftWatch && p.watchIntervalSeconds == 0)
        return "policy: watch-interval=0";
    if (t == Trigger::RtcChanged && !p.onRtcChange)
        return "policy: on-rtc-change=no";
    if (t == Trigger::Booted && !p.syncOnBoot)
        return "policy: sync-on-boot=no";
    if (!p.active())
        return p.enabled ? "policy: mode=off" : "policy: enabled=no";
    if (!facts.agentChannel)
        return "no guest agent channel configured";
    return intendedTime(facts, p.mode).leaveAlone;
}

std::unique_ptr<qga::GuestAgent> aimedAt(std::unique_ptr<qga::GuestAgent> agent,
                                         const IntendedTime& target)
{
    if (target.shiftNs == 0)
        return agent;
    return std::make_unique<ShiftedAgent>(std::move(agent), target.shiftNs);
}

void noteTarget(SyncResult& r, const IntendedTime& target)
{
    if (!target.note.empty())
        r.note = r.note.empty() ? target.note : r.note + "; " + target.note;
}

SyncPlan planSync(Trigger t, const SyncPolicy& defaults, const qga::Expected<PolicyParse>& policy,
                  const qga::Expected<DomainFacts>& facts)
{
    SyncPlan plan;
    plan.policy = defaults;
    auto problem = [&plan](const std::string& why) {
        plan.skip = why + "; left alone until that is fixed";
        plan.configProblem = true;
        return plan;
    };
    if (!policy)
        return problem("cannot read its policy metadata: " + policy.error().message);
    if (!policy->ok())
        return problem("policy metadata: " + policy->errors.join("; ").toStdString());
    plan.own = policy->policy;
    plan.policy = applyOverride(defaults, policy->policy);
    if (policy->nextBoot)
        plan.nextBootPolicy = policy->nextBoot->toStdString();
    if (!facts)
        return problem("cannot read its domain XML: " + facts.error().message);
    plan.skip = skipReason(t, plan.policy, *facts);
    if (!plan.skip)
        plan.target = intendedTime(*facts, plan.policy.mode);
    return plan;
}

} // namespace clocksync
