// SPDX-License-Identifier: Apache-2.0
#include "virtualdispatcher.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include <QCoreApplication>
#include <QTimerEvent>

void VirtualDispatcher::registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                                      QObject* object)
{
    m_timers[timerId] = {m_clock->monotonicNs() + interval * 1'000'000, interval, timerType, object,
                         ++m_armed};
}

bool VirtualDispatcher::unregisterTimer(int timerId)
{
    return m_timers.erase(timerId) > 0;
}

bool VirtualDispatcher::unregisterTimers(QObject* object)
{
    bool any = false;
    for (auto it = m_timers.begin(); it != m_timers.end();) {
        if (it->second.object == object) {
            it = m_timers.erase(it);
            any = true;
        } else {
            ++it;
        }
    }
    return any;
}

QList<QAbstractEventDispatcher::TimerInfo>
VirtualDispatcher::registeredTimers(QObject* object) const
{
    QList<TimerInfo> out;
    for (const auto& [id, t] : m_timers)
        if (t.object == object)
            out.append(TimerInfo(id, int(t.intervalMs), t.type));
    return out;
}

int VirtualDispatcher::remainingTime(int timerId)
{
    auto it = m_timers.find(timerId);
    if (it == m_timers.end())
        return -1;
    return int(std::max<int64_t>(0, (it->second.deadlineNs - m_clock->monotonicNs()) / 1'000'000));
}

std::optional<int64_t> VirtualDispatcher::nextDeadline() const
{
    std::optional<int64_t> best;
    for (const auto& [id, t] : m_timers)
        if (!best || t.deadlineNs < *best)
            best = t.deadlineNs;
    return best;
}

// The earliest due timer (ties: the one armed first).
bool VirtualDispatcher::fireOneDue()
{
    const int64_t now = m_clock->monotonicNs();
    int id = 0;
    const Timer* due = nullptr;
    for (const auto& [tid, t] : m_timers)
        if (t.deadlineNs <= now && (!due || t.deadlineNs < due->deadlineNs ||
                                    (t.deadlineNs == due->deadlineNs && t.armed < due->armed))) {
            id = tid;
            due = &t;
        }
    if (!due)
        return false;
    QObject* object = due->object;
    // A repeating timer runs again an interval later; a single-shot one
    // unregisters itself in its handler.
    Timer& again = m_timers[id];
    again.deadlineNs = now + std::max<qint64>(1, due->intervalMs) * 1'000'000;
    again.armed = ++m_armed;
    QTimerEvent e(id);
    QCoreApplication::sendEvent(object, &e);
    return true;
}

void VirtualDispatcher::fireOrphans()
{
    std::vector<std::tuple<uint64_t, int, QObject*>> left; // in the order armed
    for (const auto& [id, t] : m_timers)
        left.emplace_back(t.armed, id, t.object);
    std::sort(left.begin(), left.end());
    for (const auto& [armed, id, object] : left) {
        if (!m_timers.count(id))
            continue;
        QTimerEvent e(id);
        QCoreApplication::sendEvent(object, &e);
    }
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    QCoreApplication::sendPostedEvents();
}

void VirtualDispatcher::settle()
{
    for (int guard = 0; guard < 100000; ++guard) {
        QCoreApplication::sendPostedEvents();
        if (!fireOneDue()) {
            QCoreApplication::sendPostedEvents();
            if (!fireOneDue())
                return;
        }
    }
    qFatal("simulation: timers keep firing at the same instant");
}

bool VirtualDispatcher::processEvents(QEventLoop::ProcessEventsFlags)
{
    emit awake();
    QCoreApplication::sendPostedEvents();
    return fireOneDue();
}
