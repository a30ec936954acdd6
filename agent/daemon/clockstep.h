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

class ClockStepWatcher : public QObject
{
    Q_OBJECT
public:
    explicit ClockStepWatcher(QObject* parent = nullptr);
    ~ClockStepWatcher() override;
    // Error text, or empty when watching.
    QString start();

    // realtime - monotonic, in ns: a step changes it by the step size.
    static int64_t realtimeMinusMonotonicNs();

signals:
    void stepped(int64_t stepNs);

private:
    bool arm();
    void onWake();

    int m_fd = -1;
    int64_t m_lastDiffNs = 0;
    std::unique_ptr<QSocketNotifier> m_notifier;
};

} // namespace clocksync
