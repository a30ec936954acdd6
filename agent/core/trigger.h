// SPDX-License-Identifier: Apache-2.0
// Why a sync was started. Carried through the tracker, the engine's result,
// logs and metrics.
#pragma once

#include <optional>
#include <string_view>

namespace clocksync {

enum class Trigger {
    Resumed,          // unpaused
    MigratedIn,       // resumed or started after an incoming migration
    SnapshotReverted, // resumed/started from a snapshot
    Restored,         // started from a save file (also managedsave)
    PmWakeup,         // guest woke from S3/S4
    Booted,           // fresh boot (only if policy sync-on-boot)
    HostWake,         // the host woke from sleep
    Reconcile,        // daemon start or libvirt reconnect: events were lost
    Request,          // operator: CLI or control socket
    PolicyChanged,    // our domain metadata changed (incl. a resync request)
    HostClockStep,    // the host's CLOCK_REALTIME was stepped
    DriftWatch,       // periodic check (opt-in watch-interval)
    MigrationFailed,  // the source resumed a guest whose outgoing migration failed
    RtcChanged,       // someone else set the guest's clock (RTC_CHANGE not caused by us)
    // (the last: metrics enumerate the triggers up to it)
};

std::string_view triggerName(Trigger t);
std::optional<Trigger> triggerFromName(std::string_view name);

} // namespace clocksync
