// libvirt domain events → what the tracker does. A pure function of the event
// codes, table-tested; DESIGN.md section 2 is the table.
#pragma once

#include "trigger.h"

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
        Cancel,           // paused/stopped: drop pending work, abort in-flight
        AgentConnected,
        AgentDisconnected,
        IncomingMigration, // destination, at Prepare: paused, nothing to do until it resumes
        MigrationResumed,  // RESUMED_MIGRATED/POSTCOPY: which side decides the trigger
        Forget,            // undefined: drop everything known about the domain
    } kind = None;
    Trigger trigger = Trigger::Resumed;

    bool operator==(const EventAction&) const = default;
};

// VIR_DOMAIN_EVENT_ID_LIFECYCLE (event, detail).
EventAction mapLifecycleEvent(int event, int detail);
// VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE (state, reason).
EventAction mapAgentLifecycleEvent(int state, int reason);

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
