// SPDX-License-Identifier: Apache-2.0
// What a hypervisor event means for the tracker, in the core's terms. The
// libvirt layer maps its event codes to these (agent/libvirt/eventmap.cpp,
// table-tested; docs/design.md §2 is the table); the daemon acts on them
// without knowing libvirt.
#pragma once

#include "trigger.h"

#include <QMetaType>

#include <optional>
#include <set>
#include <string>

namespace clocksync {

struct EventAction
{
    enum Kind {
        None,
        Sync,             // sync now (agent should already be connected)
        SyncWhenAgent,    // sync once the agent (re)connects
        SyncIfBootPolicy, // fresh boot: only if policy sync-on-boot
        Cancel,           // paused, suspended, crashed: drop pending work, abort in-flight
        Stop,             // shut down or stopped: Cancel, and stop watching it
        AgentConnected,
        AgentDisconnected,
        IncomingMigration, // destination, at Prepare: paused, nothing to do until it resumes
        MigrationResumed,  // RESUMED_MIGRATED/POSTCOPY: which side decides the trigger
        Forget,            // migrated away: drop everything known about it
        Undefined,         // undefined: forgotten if libvirt no longer has it (a running
                           // domain undefined goes on as a transient one, its sync too)
        RtcChanged,        // someone set the guest's RTC (filtered by RtcChangeFilter)
        PolicyChanged,     // our metadata changed: re-read it (and maybe sync)
    } kind = None;
    Trigger trigger = Trigger::Resumed;
    bool migrationDone = false; // MigrationResumed: RESUMED_MIGRATED (not post-copy's start)
    // RtcChanged: the RTC's new offset from UTC in seconds, as libvirt reports
    // it (for a variable clock: its new live adjustment).
    std::optional<int64_t> rtcOffsetS = std::nullopt;

    bool operator==(const EventAction&) const = default;
};

// Which side of a migration this host is on. RESUMED_MIGRATED comes on the
// destination when an incoming guest starts running (after STARTED_MIGRATED),
// and on the source when a failed or cancelled migration resumes the guest
// there: the same event, two truths.
class MigrationSides
{
public:
    void incoming(const std::string& uuid) { m_incoming.insert(uuid); }
    // The trigger for a RESUMED_MIGRATED (finished = true) or RESUMED_POSTCOPY.
    Trigger resumed(const std::string& uuid, bool finished)
    {
        const bool in = m_incoming.count(uuid) > 0;
        if (finished)
            m_incoming.erase(uuid);
        return in ? Trigger::MigratedIn : Trigger::MigrationFailed;
    }
    void forget(const std::string& uuid) { m_incoming.erase(uuid); }

private:
    std::set<std::string> m_incoming;
};

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::EventAction)
