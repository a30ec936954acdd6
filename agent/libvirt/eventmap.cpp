// SPDX-License-Identifier: Apache-2.0
// The trigger table.
#include "eventmap.h"

#include <libvirt/libvirt.h>

namespace clocksync {

EventAction mapLifecycleEvent(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_RESUMED:
        switch (detail) {
        case VIR_DOMAIN_EVENT_RESUMED_UNPAUSED:
            return {EventAction::Sync, Trigger::Resumed};
        case VIR_DOMAIN_EVENT_RESUMED_MIGRATED:
            return {EventAction::MigrationResumed, Trigger::MigratedIn, true};
        case VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT:
            return {EventAction::Sync, Trigger::SnapshotReverted};
        case VIR_DOMAIN_EVENT_RESUMED_POSTCOPY:
            // Running on the destination while memory still arrives; the
            // RESUMED_MIGRATED that ends post-copy checks once more (cheap:
            // a measurement, a set only if the guest is beyond tolerance).
            return {EventAction::MigrationResumed, Trigger::MigratedIn};
        default:
            return {}; // POSTCOPY_FAILED: the migration failed, the source keeps running
        }
    case VIR_DOMAIN_EVENT_STARTED:
        switch (detail) {
        case VIR_DOMAIN_EVENT_STARTED_BOOTED:
            return {EventAction::SyncIfBootPolicy, Trigger::Booted};
        case VIR_DOMAIN_EVENT_STARTED_MIGRATED:
            // Prepare, before the memory transfer: the guest is paused here
            // until it resumes (RESUMED_MIGRATED); the agent wait starts then.
            return {EventAction::IncomingMigration, Trigger::MigratedIn};
        case VIR_DOMAIN_EVENT_STARTED_RESTORED:
            return {EventAction::SyncWhenAgent, Trigger::Restored};
        case VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT:
            return {EventAction::SyncWhenAgent, Trigger::SnapshotReverted};
        case VIR_DOMAIN_EVENT_STARTED_WAKEUP:
            // Follows PMWAKEUP on an S3 wake; the agent did not go away.
            return {EventAction::Sync, Trigger::PmWakeup};
        default:
            return {};
        }
    case VIR_DOMAIN_EVENT_DEFINED:
        // virsh define or virt-manager's XML editor changed the persistent
        // definition: its policy is read again (and made live if it was
        // edited; LibvirtBackend::readPolicy), like a metadata change.
        if (detail == VIR_DOMAIN_EVENT_DEFINED_UPDATED)
            return {EventAction::PolicyChanged, Trigger::PolicyChanged};
        return {};
    case VIR_DOMAIN_EVENT_UNDEFINED:
        return {EventAction::Undefined, Trigger::Resumed};
    case VIR_DOMAIN_EVENT_STOPPED:
        // Migrated away: it runs elsewhere now, nothing here is about it.
        if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
            return {EventAction::Forget, Trigger::Resumed};
        return {EventAction::Stop, Trigger::Resumed};
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        return {EventAction::Stop, Trigger::Resumed};
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
    case VIR_DOMAIN_EVENT_SUSPENDED:
    case VIR_DOMAIN_EVENT_CRASHED:
        return {EventAction::Cancel, Trigger::Resumed};
    default:
        return {};
    }
}

EventAction mapAgentLifecycleEvent(int state, int /*reason*/)
{
    if (state == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED)
        return {EventAction::AgentConnected, Trigger::Resumed};
    if (state == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED)
        return {EventAction::AgentDisconnected, Trigger::Resumed};
    return {};
}

} // namespace clocksync
