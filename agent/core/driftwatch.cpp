// SPDX-License-Identifier: Apache-2.0
// DriftWatch.
#include "driftwatch.h"

#include <QDeadlineTimer>

#include <algorithm>

namespace clocksync {

DriftWatch::DriftWatch(QObject* parent) : QObject(parent)
{
    m_timer.setSingleShot(true);
    m_timer.setTimerType(Qt::CoarseTimer);
    connect(&m_timer, &QTimer::timeout, this, &DriftWatch::onTimer);
}

int64_t DriftWatch::nowMs()
{
    return QDeadlineTimer::current().deadline();
}

int64_t DriftWatch::jittered(int64_t intervalMs)
{
    m_rng ^= m_rng << 13;
    m_rng ^= m_rng >> 7;
    m_rng ^= m_rng << 17;
    const int64_t span = std::max<int64_t>(1, intervalMs / 5); // +/-10 %
    return intervalMs - span / 2 + int64_t(m_rng % uint64_t(span));
}

void DriftWatch::setInterval(const std::string& uuid, const std::string& name, int64_t intervalMs)
{
    if (intervalMs <= 0) {
        m_domains.erase(uuid);
    } else {
        Entry& e = m_domains[uuid];
        const bool changed = e.intervalMs != intervalMs;
        e.name = name.empty() ? e.name : name;
        e.intervalMs = intervalMs;
        if (changed)
            e.nextMs = nowMs() + jittered(intervalMs);
    }
    rearm();
}

void DriftWatch::rearm()
{
    if (m_domains.empty()) {
        m_timer.stop();
        return;
    }
    int64_t earliest = INT64_MAX;
    for (const auto& [uuid, e] : m_domains)
        earliest = std::min(earliest, e.nextMs);
    m_timer.start(int(std::clamp<int64_t>(earliest - nowMs(), 0, INT32_MAX)));
}

void DriftWatch::onTimer()
{
    const int64_t now = nowMs();
    std::vector<std::pair<std::string, std::string>> fire;
    for (auto& [uuid, e] : m_domains) {
        if (e.nextMs <= now) {
            fire.emplace_back(uuid, e.name);
            e.nextMs = now + jittered(e.intervalMs);
        }
    }
    rearm();
    for (const auto& [uuid, name] : fire)
        emit due(uuid, name);
}

} // namespace clocksync
