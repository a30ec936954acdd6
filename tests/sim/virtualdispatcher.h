// SPDX-License-Identifier: Apache-2.0
// A Qt event dispatcher on simulated time: every QTimer of the daemon (agent
// waits and retries, list retries, deferred RTC refines, drift checks) fires
// when the simulation's clock reaches its deadline, never by the wall clock.
// Socket notifiers are accepted and never fire: the simulation has no I/O.
// Installed before QCoreApplication exists, so the whole process runs on it.
#pragma once

#include "fakes.h"

#include <QAbstractEventDispatcher>

#include <map>
#include <optional>

class VirtualDispatcher final : public QAbstractEventDispatcher
{
public:
    explicit VirtualDispatcher(FakeClock& clock) : m_clock(&clock) {}
    // Each schedule starts on a clock of its own: a seed replays alone exactly
    // as it ran among others. No timer may be armed across the switch.
    void setClock(FakeClock& clock) { m_clock = &clock; }

    // Posted events, then every timer due at the simulated now, until none is left.
    void settle();
    // The earliest timer deadline (monotonic ns), if any timer is armed.
    std::optional<int64_t> nextDeadline() const;
    int armedTimers() const { return int(m_timers.size()); }
    // After a schedule: single-shot timers whose receiver is gone (Qt keeps
    // them until they fire) fire now, doing nothing, and are deleted.
    void fireOrphans();

    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;
    void registerSocketNotifier(QSocketNotifier*) override {}
    void unregisterSocketNotifier(QSocketNotifier*) override {}
    void registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                       QObject* object) override;
    bool unregisterTimer(int timerId) override;
    bool unregisterTimers(QObject* object) override;
    QList<TimerInfo> registeredTimers(QObject* object) const override;
    int remainingTime(int timerId) override;
    void wakeUp() override {}
    void interrupt() override {}

private:
    struct Timer
    {
        int64_t deadlineNs;
        qint64 intervalMs;
        Qt::TimerType type;
        QObject* object;
        uint64_t armed; // order of arming: ties at one deadline fire in it
    };
    bool fireOneDue();

    FakeClock* m_clock;
    std::map<int, Timer> m_timers;
    // Not the timer id: Qt reuses freed ids (how differs by version), so an
    // id says nothing about when a timer was armed -- and a batch member
    // would not replay alone, nor on another Qt.
    uint64_t m_armed = 0;
};
