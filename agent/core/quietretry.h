// SPDX-License-Identifier: Apache-2.0
// How loudly to report a failure that repeats on a retry timer (the libvirt
// connection on a host where libvirt is not running): a warning the first
// time, when the reason changes and once an hour; the repeats in between at
// debug level. A host without libvirt then logs one line an hour, not one
// every 30 s forever.
#pragma once

#include <QString>

#include <cstdint>

namespace clocksync {

class QuietRetry
{
public:
    static constexpr int64_t kRepeatNs = 3600'000'000'000;
    // A failure now (monotonic ns); true if it deserves a warning.
    bool loud(const QString& why, int64_t nowNs)
    {
        ++m_failures;
        const bool loud = m_failures == 1 || why != m_why || nowNs - m_lastLoudNs >= kRepeatNs;
        m_why = why;
        if (loud)
            m_lastLoudNs = nowNs;
        return loud;
    }
    // Failures since the last success.
    int failures() const { return m_failures; }
    void succeeded() { *this = QuietRetry{}; }

private:
    QString m_why;
    int m_failures = 0;
    int64_t m_lastLoudNs = 0;
};

} // namespace clocksync
