// SPDX-License-Identifier: Apache-2.0
// Host clock steps: CLOCK_REALTIME set by NTP/PTP, chrony makestep or an
// operator's date -s. Guests do not follow (their kvm-clock runs off the host's
// monotonic time), so every running guest needs a sync. Detected without
// polling: a timerfd armed with TFD_TIMER_CANCEL_ON_SET wakes exactly when the
// clock is set. Slewing (adjtime) does not wake it, and needs no action.
#pragma once

#include <QObject>
#include <QSocketNotifier>

#include <cstdint>
#include <memory>

namespace clocksync {

// Where a set of the host clock is noticed: the kernel's timerfd in the
// daemon, a fake in tests (which must never set this machine's clock).
class ClockSetSource
{
public:
    virtual ~ClockSetSource() = default;
    // Error text, or empty when fd() is valid.
    virtual QString open() = 0;
    // Readable once the clock has been set since the last arm().
    virtual int fd() const = 0;
    virtual bool arm() = 0;
    // Reads the wake-up: true if it was a set of the clock.
    virtual bool takeSet() = 0;
    // realtime - monotonic, in ns: a step changes it by the step size.
    virtual int64_t realtimeMinusMonotonicNs() const = 0;
};

std::unique_ptr<ClockSetSource> makeTimerFdClockSetSource();

class ClockStepWatcher : public QObject
{
    Q_OBJECT
public:
    explicit ClockStepWatcher(QObject* parent = nullptr);
    ~ClockStepWatcher() override;
    // Replaces the timerfd (tests); before start().
    void setSource(std::unique_ptr<ClockSetSource> source) { m_source = std::move(source); }
    // Error text, or empty when watching.
    QString start();

signals:
    void stepped(int64_t stepNs);

private:
    bool arm();
    void onWake();

    std::unique_ptr<ClockSetSource> m_source;
    int64_t m_lastDiffNs = 0;
    std::unique_ptr<QSocketNotifier> m_notifier;
};

} // namespace clocksync
