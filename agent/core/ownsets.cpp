// SPDX-License-Identifier: Apache-2.0
#include "ownsets.h"

#include "clock.h"

#include <algorithm>

namespace clocksync {

uint64_t OwnSetLedger::sent(const std::string& uuid, int64_t sentRealNs, int64_t aimNs,
                            int64_t rtcAheadNs)
{
    std::lock_guard lock(m_mutex);
    std::deque<Set>& sets = m_domains[uuid].sets;
    sets.push_back({++m_next, sentRealNs, aimNs + rtcAheadNs, std::nullopt});
    if (sets.size() > kKept)
        sets.pop_front();
    return m_next;
}

void OwnSetLedger::returned(const std::string& uuid, uint64_t id, int64_t realNs, Reply reply)
{
    std::lock_guard lock(m_mutex);
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return;
    for (Set& s : it->second.sets)
        if (s.id == id) {
            s.returned = true;
            s.ran = reply == Reply::Ran;
        }
    if (reply == Reply::MayLandLate)
        return;
    if (reply == Reply::NotSent) {
        std::erase_if(it->second.sets, [id](const Set& s) { return s.id == id; });
        return;
    }
    for (Set& s : it->second.sets) {
        if (s.id > id)
            break;
        if (!s.landedByNs || *s.landedByNs > realNs)
            s.landedByNs = realNs;
    }
}

bool OwnSetLedger::explains(const std::string& uuid, int64_t rtcOffsetNs, int64_t nowRealNs,
                            Seen seen) const
{
    std::lock_guard lock(m_mutex);
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return false;
    const std::deque<Set>& sets = it->second.sets;
    auto from = sets.begin();
    if (seen == Seen::Now) // what the RTC holds: our latest set that ran, or a later one
        for (auto s = sets.begin(); s != sets.end(); ++s) {
            if (s->id <= it->second.overwrittenUpTo)
                from = std::next(s); // someone else's write came after it
            else if (s->ran)
                from = s;
        }
    return std::any_of(from, sets.end(), [&](const Set& s) {
        // Landing at t, the guest reads host + aim - (t - sent): its RTC the same.
        const int64_t latest = s.landedByNs.value_or(nowRealNs);
        const int64_t lateBy = std::max<int64_t>(0, latest - s.sentRealNs);
        return rtcOffsetNs <= s.aimRtcNs + kSlackNs &&
               rtcOffsetNs >= s.aimRtcNs - lateBy - kSlackNs;
    });
}

bool OwnSetLedger::inFlight(const std::string& uuid) const
{
    std::lock_guard lock(m_mutex);
    auto it = m_domains.find(uuid);
    return it != m_domains.end() && std::any_of(it->second.sets.begin(), it->second.sets.end(),
                                                [](const Set& s) { return !s.returned; });
}

void OwnSetLedger::settled(const std::string& uuid, int64_t realNs)
{
    std::lock_guard lock(m_mutex);
    auto it = m_domains.find(uuid);
    if (it == m_domains.end())
        return;
    for (Set& s : it->second.sets)
        if (!s.landedByNs) {
            s.landedByNs = realNs;
            s.ran = true; // or it failed: the latest that may be the RTC's either way
        }
}

void OwnSetLedger::overwritten(const std::string& uuid)
{
    std::lock_guard lock(m_mutex);
    auto it = m_domains.find(uuid);
    if (it != m_domains.end())
        it->second.overwrittenUpTo = m_next;
}

void OwnSetLedger::forget(const std::string& uuid)
{
    std::lock_guard lock(m_mutex);
    m_domains.erase(uuid);
}

RecordingAgent::RecordingAgent(std::unique_ptr<qga::GuestAgent> inner, OwnSetLedger& ledger,
                               const qga::Clock& clock, std::string uuid, int64_t rtcAheadNs)
    : m_inner(std::move(inner)), m_ledger(ledger), m_clock(clock), m_uuid(std::move(uuid)),
      m_rtcAhead(rtcAheadNs)
{
}

qga::Expected<qga::TimeSample> RecordingAgent::getTime()
{
    qga::Expected<qga::TimeSample> s = m_inner->getTime();
    if (s) // a set that timed out before is not open for ever (a re-measure answers)
        m_ledger.settled(m_uuid, s->hostAfterNs);
    return s;
}

qga::Expected<void> RecordingAgent::setTime(int64_t guestNs)
{
    const int64_t sentAt = m_clock.realtimeNs();
    const uint64_t id = m_ledger.sent(m_uuid, sentAt, guestNs - sentAt, m_rtcAhead);
    qga::Expected<void> r = m_inner->setTime(guestNs);
    using Reply = OwnSetLedger::Reply;
    Reply reply = Reply::Ran; // the agent's own answer, an error included
    if (!r)
        switch (r.error().kind) {
        case qga::ErrorKind::AgentError:
        case qga::ErrorKind::CommandDisabled:
        case qga::ErrorKind::CommandNotFound:
            break;
        case qga::ErrorKind::AgentUnavailable:
        case qga::ErrorKind::NotRunning:
        case qga::ErrorKind::Unsupported:
            reply = Reply::NotSent;
            break;
        default:
            reply = Reply::MayLandLate;
        }
    m_ledger.returned(m_uuid, id, m_clock.realtimeNs(), reply);
    return r;
}

} // namespace clocksync
