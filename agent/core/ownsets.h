// SPDX-License-Identifier: Apache-2.0
// Which RTC writes are ours. After every guest-set-time the guest writes its
// RTC (hwclock -w); libvirt reports it (RTC_CHANGE) and, for a variable
// clock, folds it into the live adjustment, to the whole second. A set lands
// when the agent runs it: at once, or late -- the guest paused or the host
// asleep under the call, the call timed out -- with the time it carried, so
// it lands behind by however late it is. The ledger keeps each domain's last
// sets: when sent, at what offset, and until when each could land. An RTC
// offset is ours if one of them, landing within its window, gives it (within
// the RTC's second), whenever the event comes -- or if libvirt's event was
// lost and only the live adjustment shows it. Anything else is someone
// else's (docs/design.md §5). Thread-safe: jobs record on workers, the
// daemon asks on the main thread.
#pragma once

#include "guestagent.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace qga {
class Clock;
}

namespace clocksync {

class OwnSetLedger
{
public:
    // A set is about to be sent at host realtime sentRealNs, aiming the
    // guest's system clock at host + aimNs; its RTC then reads host +
    // aimNs + rtcAheadNs (basis='localtime'). Returns its id.
    uint64_t sent(const std::string& uuid, int64_t sentRealNs, int64_t aimNs, int64_t rtcAheadNs);
    enum class Reply {
        Ran,         // the agent answered (done, refused, or set and then failed): it
                     // cannot land later, nor can a set sent before it (qemu-ga runs
                     // commands in order)
        MayLandLate, // timed out, the connection failed: it may still land
        NotSent,     // the agent was not there to be asked
    };
    // Its call returned at realNs.
    void returned(const std::string& uuid, uint64_t id, int64_t realNs, Reply reply);
    enum class Seen {
        Now,      // the live adjustment: our latest set that ran, or one after it
        Reported, // an RTC_CHANGE, which may come after a later set's: any kept
    };
    // An RTC offset from host UTC (libvirt's live adjustment in basis='utc'
    // terms, or an RTC_CHANGE's) that one of our sets explains.
    bool explains(const std::string& uuid, int64_t rtcOffsetNs, int64_t nowRealNs, Seen seen) const;
    // The agent answered a later call (qemu-ga runs commands in order): every
    // set still open has landed by realNs, or never will.
    void settled(const std::string& uuid, int64_t realNs);
    // Someone else's write was seen in the live value since our sets so far:
    // none of them is what the RTC holds now (Seen::Now).
    void overwritten(const std::string& uuid);
    // A set of ours has been sent and its call has not returned: it lands
    // after whatever the guest does meanwhile.
    bool inFlight(const std::string& uuid) const;
    void forget(const std::string& uuid);

    // The RTC's whole second, and hwclock's rounding of it either way.
    static constexpr int64_t kSlackNs = 1'500'000'000;
    static constexpr size_t kKept = 8; // per domain; older sets have been overwritten

private:
    struct Set
    {
        uint64_t id = 0;
        int64_t sentRealNs = 0;
        int64_t aimRtcNs = 0;
        std::optional<int64_t> landedByNs; // nullopt: may still land
        bool returned = false;
        bool ran = false; // answered: the RTC has held its write since
    };
    mutable std::mutex m_mutex;
    struct Domain
    {
        std::deque<Set> sets;
        uint64_t overwrittenUpTo = 0; // sets up to this id are not in the RTC now
    };
    std::map<std::string, Domain> m_domains;
    uint64_t m_next = 0;
};

// Records every set made through it in the ledger (the decorator below the
// intended-time shift: it sees the time actually sent).
class RecordingAgent final : public qga::GuestAgent
{
public:
    RecordingAgent(std::unique_ptr<qga::GuestAgent> inner, OwnSetLedger& ledger,
                   const qga::Clock& clock, std::string uuid, int64_t rtcAheadNs);
    std::string transport() const override { return m_inner->transport(); }
    qga::Expected<void> ping() override { return m_inner->ping(); }
    qga::Expected<qga::AgentInfo> info() override { return m_inner->info(); }
    qga::Expected<qga::TimeSample> getTime() override;
    qga::Expected<void> setTime(int64_t guestNs) override;
    qga::Expected<void> setTimeFromRtc() override { return m_inner->setTimeFromRtc(); }

private:
    std::unique_ptr<qga::GuestAgent> m_inner;
    OwnSetLedger& m_ledger;
    const qga::Clock& m_clock;
    std::string m_uuid;
    int64_t m_rtcAhead;
};

} // namespace clocksync
