// SPDX-License-Identifier: Apache-2.0
// ClockStepWatcher and its timerfd source.
#include "clockstep.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <sys/timerfd.h>
#include <unistd.h>

namespace clocksync {

namespace {

class TimerFdSource final : public ClockSetSource
{
public:
    ~TimerFdSource() override
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    QString open() override
    {
        m_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        return m_fd < 0 ? QString::fromLocal8Bit(std::strerror(errno)) : QString();
    }
    int fd() const override { return m_fd; }
    bool arm() override
    {
        // An absolute expiry far in the future: the timer never fires by
        // itself, it only wakes us (ECANCELED) when the clock is set.
        itimerspec spec{};
        spec.it_value.tv_sec = time(nullptr) + 10L * 365 * 24 * 3600;
        return timerfd_settime(m_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) ==
               0;
    }
    bool takeSet() override
    {
        uint64_t expirations = 0;
        return ::read(m_fd, &expirations, sizeof(expirations)) < 0 && errno == ECANCELED;
    }
    int64_t realtimeMinusMonotonicNs() const override
    {
        timespec r{}, m{};
        clock_gettime(CLOCK_REALTIME, &r);
        clock_gettime(CLOCK_MONOTONIC, &m);
        return (int64_t(r.tv_sec) - int64_t(m.tv_sec)) * 1'000'000'000 + (r.tv_nsec - m.tv_nsec);
    }

private:
    int m_fd = -1;
};

} // namespace

std::unique_ptr<ClockSetSource> makeTimerFdClockSetSource()
{
    return std::make_unique<TimerFdSource>();
}

ClockStepWatcher::ClockStepWatcher(QObject* parent)
    : QObject(parent), m_source(makeTimerFdClockSetSource())
{
}

ClockStepWatcher::~ClockStepWatcher()
{
    m_notifier.reset(); // before the descriptor it watches
}

bool ClockStepWatcher::arm()
{
    m_lastDiffNs = m_source->realtimeMinusMonotonicNs();
    return m_source->arm();
}

QString ClockStepWatcher::start()
{
    if (const QString err = m_source->open(); !err.isEmpty())
        return err;
    if (!arm())
        return QString::fromLocal8Bit(std::strerror(errno));
    m_notifier = std::make_unique<QSocketNotifier>(m_source->fd(), QSocketNotifier::Read);
    connect(m_notifier.get(), &QSocketNotifier::activated, this, &ClockStepWatcher::onWake);
    return {};
}

void ClockStepWatcher::onWake()
{
    const bool wasSet = m_source->takeSet();
    const int64_t before = m_lastDiffNs;
    arm(); // re-arm first: a second step right after must not be missed
    if (wasSet)
        emit stepped(m_lastDiffNs - before);
}

} // namespace clocksync
