// SPDX-License-Identifier: Apache-2.0
#include "rtcchange.h"

namespace clocksync {

RtcChangeFilter::Decision RtcChangeFilter::onEvent(const std::string& uuid, int64_t nowNs,
                                                   bool ownSyncActive)
{
    const State& s = m_domains[uuid];
    if (ownSyncActive || nowNs - s.lastOwnSetNs < m_grace)
        return {};
    return onForeignEvent(uuid, nowNs);
}

RtcChangeFilter::Decision RtcChangeFilter::onForeignEvent(const std::string& uuid, int64_t nowNs)
{
    State& s = m_domains[uuid];
    if (nowNs - s.lastAcceptedNs < m_minInterval) {
        if (s.deferred)
            return {};
        s.deferred = true;
        return {Action::Defer, s.lastAcceptedNs + m_minInterval};
    }
    s.lastAcceptedNs = nowNs;
    return {Action::SyncNow, 0};
}

void RtcChangeFilter::ownSyncEnded(const std::string& uuid, int64_t nowNs, bool setMade)
{
    if (setMade)
        m_domains[uuid].lastOwnSetNs = nowNs;
}

bool RtcChangeFilter::fireDeferred(const std::string& uuid, int64_t nowNs)
{
    auto it = m_domains.find(uuid);
    if (it == m_domains.end() || !it->second.deferred)
        return false;
    it->second.deferred = false;
    it->second.lastAcceptedNs = nowNs;
    return true;
}

} // namespace clocksync
