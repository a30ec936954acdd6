// SPDX-License-Identifier: Apache-2.0
// Who may refine now: one guest at a time, none while another is in phase 1
// (docs/design.md §4).
#pragma once

#include <mutex>

namespace clocksync {

// Shared by the syncs of one scheduler (thread-safe): a refine sets and
// verifies alone -- no other guest in phase 1, no other refine at the same
// time. Measured here: with 8 TCG guests resuming on 2 cores, a set made
// while the others set lands up to 14 ms late (the guest's vCPU waits for a
// host CPU), while the min-RTT verify still looks fine; one at a time, the
// guests' first sets done, a set lands as on a quiet host.
class RefineGate
{
public:
    void phase1Started();
    void phase1Ended();
    bool tryEnter(); // no phase 1 running and the gate free: now it is ours
    void leave();

private:
    std::mutex m_mutex;
    int m_phase1 = 0;
    bool m_held = false;
};

} // namespace clocksync
