// SPDX-License-Identifier: Apache-2.0
// libvirt domain events → what the tracker does (EventAction, core). Pure
// functions of the event codes, table-tested; docs/design.md §2 is the table.
#pragma once

#include "domainevent.h"

namespace clocksync {

// VIR_DOMAIN_EVENT_ID_LIFECYCLE (event, detail).
EventAction mapLifecycleEvent(int event, int detail);
// VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE (state, reason).
EventAction mapAgentLifecycleEvent(int state, int reason);

} // namespace clocksync
