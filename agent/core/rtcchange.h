// SPDX-License-Identifier: Apache-2.0
// Someone else set a guest's clock (virsh domtime --now, a script calling
// virDomainSetTime): qemu-ga ran hwclock -w and libvirt reported the RTC
// write (RTC_CHANGE). The daemon then refines the guest to its own target.
// This filter decides when to act on someone else's; whose an event is, the
// daemon asks OwnSetLedger (by the RTC offset the event carries). Only an
// event without one is judged by its timing here:
// - our own sets cause the same event: one without an offset is ignored
//   while a sync of ours is in flight and for a grace period after one that
//   set the clock;
// - a burst (a guest running hwclock -w in a loop, NTP's 11-minute mode)
//   yields at most one sync per domain per minimum interval: the first at
//   once, the rest folded into one deferred sync at the end of the interval.
// Pure (times are given), unit-tested; the daemon owns the timers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace clocksync {

class RtcChangeFilter
{
public:
    // The grace covers an own event delivered after our sync's result (qemu-ga
    // writes the RTC before it answers the set, so it is usually in flight
    // already). A late own event mistaken for a foreign one costs one
    // measurement (the guest is in tolerance: no set, no further event).
    explicit RtcChangeFilter(int64_t minIntervalNs, int64_t graceNs = 1'000'000'000)
        : m_minInterval(minIntervalNs), m_grace(graceNs)
    {
    }
    void setMinInterval(int64_t ns) { m_minInterval = ns; }

    enum class Action {
        Ignore,  // our own set, or already folded into a deferred sync
        SyncNow, // someone else's set: sync (trigger rtc-changed)
        Defer,   // someone else's, within the interval: one sync at dueNs
    };
    struct Decision
    {
        Action action = Action::Ignore;
        int64_t dueNs = 0; // Defer: when to call fireDeferred
    };
    // ownSyncActive: a sync of ours is waiting or running for the domain.
    Decision onEvent(const std::string& uuid, int64_t nowNs, bool ownSyncActive);
    // One known to be someone else's (its offset is none of our sets'):
    // only the burst limit applies.
    Decision onForeignEvent(const std::string& uuid, int64_t nowNs);
    // A sync of ours ended; setMade: it set the guest's clock (an RTC write follows).
    void ownSyncEnded(const std::string& uuid, int64_t nowNs, bool setMade);
    // The deferred sync is due: true if it still should run.
    bool fireDeferred(const std::string& uuid, int64_t nowNs);
    void forget(const std::string& uuid) { m_domains.erase(uuid); }

private:
    struct State
    {
        int64_t lastOwnSetNs = INT64_MIN / 2;
        int64_t lastAcceptedNs = INT64_MIN / 2;
        bool deferred = false;
    };
    int64_t m_minInterval;
    int64_t m_grace;
    std::map<std::string, State> m_domains;
};

} // namespace clocksync
