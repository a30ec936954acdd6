// SPDX-License-Identifier: Apache-2.0
// ClockStepWatcher.
#include "clockstep.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <sys/timerfd.h>
#include <unistd.h>

namespace clocksync {

ClockStepWatcher::ClockStepWatcher(QObject* parent) : QObject(parent) {}

ClockStepWatcher::~ClockStepWatcher()
{
    m_notifier.reset();
    if (m_fd >= 0)
        ::close(m_fd);
}

int64_t ClockStepWatcher::realtimeMinusMonotonicNs()
{
    timespec r{}, m{};
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return (int64_t(r.tv_sec) - int64_t(m.tv_sec)) * 1'000'000'000 + (r.tv_nsec - m.tv_nsec);
}

bool ClockStepWatcher::arm()
{
    // An absolute expiry far in the future: the timer never fires by itself,
    // it only wakes us (ECANCELED) when the clock is set.
    itimerspec spec{};
    spec.it_value.tv_sec = time(nullptr) + 10L * 365 * 24 * 3600;
    m_lastDiffNs = realtimeMinusMonotonicNs();
    return timerfd_settime(m_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) == 0;
}

QString ClockStepWatcher::start()
{
    m_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (m_fd < 0 || !arm())
        return QString::fromLocal8Bit(std::strerror(errno));
    m_notifier = std::make_unique<QSocketNotifier>(m_fd, QSocketNotifier::Read);
    connect(m_notifier.get(), &QSocketNotifier::activated, this, &ClockStepWatcher::onWake);
    return {};
}

void ClockStepWatcher::onWake()
{
    uint64_t expirations = 0;
    const ssize_t n = ::read(m_fd, &expirations, sizeof(expirations));
    const int64_t before = m_lastDiffNs;
    arm(); // re-arm first: a second step right after must not be missed
    if (n < 0 && errno == ECANCELED)
        emit stepped(m_lastDiffNs - before);
}

} // namespace clocksync
