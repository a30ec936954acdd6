// libvirt domain events → what the tracker does. A pure function of the event
// codes, table-tested; DESIGN.md section 2 is the table.
#pragma once

#include "trigger.h"

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
    } kind = None;
    Trigger trigger = Trigger::Resumed;

    bool operator==(const EventAction&) const = default;
};

// VIR_DOMAIN_EVENT_ID_LIFECYCLE (event, detail).
EventAction mapLifecycleEvent(int event, int detail);
// VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE (state, reason).
EventAction mapAgentLifecycleEvent(int state, int reason);

} // namespace clocksync
