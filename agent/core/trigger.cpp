// SPDX-License-Identifier: Apache-2.0
// Trigger names as they appear in logs, metrics and the control protocol.
#include "trigger.h"

#include <array>
#include <utility>

namespace clocksync {

static constexpr std::array<std::pair<Trigger, std::string_view>, 14> kNames{{
    {Trigger::Resumed, "resumed"},
    {Trigger::MigratedIn, "migrated-in"},
    {Trigger::SnapshotReverted, "snapshot-reverted"},
    {Trigger::Restored, "restored"},
    {Trigger::PmWakeup, "pm-wakeup"},
    {Trigger::Booted, "booted"},
    {Trigger::HostWake, "host-wake"},
    {Trigger::Reconcile, "reconcile"},
    {Trigger::Request, "request"},
    {Trigger::PolicyChanged, "policy-changed"},
    {Trigger::HostClockStep, "host-clock-step"},
    {Trigger::DriftWatch, "drift-watch"},
    {Trigger::MigrationFailed, "migration-failed"},
    {Trigger::RtcChanged, "rtc-changed"},
}};

std::string_view triggerName(Trigger t)
{
    for (const auto& [trigger, name] : kNames)
        if (trigger == t)
            return name;
    return "unknown";
}

std::optional<Trigger> triggerFromName(std::string_view name)
{
    for (const auto& [trigger, n] : kNames)
        if (n == name)
            return trigger;
    return std::nullopt;
}

} // namespace clocksync
