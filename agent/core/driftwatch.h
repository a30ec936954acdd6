// SPDX-License-Identifier: Apache-2.0
// Opt-in drift watch: measures watched guests every watch-interval, with one
// single-shot timer for all of them (armed for the earliest due guest, with
// +/-10 % jitter so guests do not line up). No watched guest: no timer, no
// wakeups at all.
#pragma once

#include <QObject>
#include <QTimer>

#include <cstdint>
#include <map>
#include <string>

namespace clocksync {

class DriftWatch : public QObject
{
    Q_OBJECT
public:
    explicit DriftWatch(QObject* parent = nullptr);

    // intervalMs 0 stops watching the domain.
    void setInterval(const std::string& uuid, const std::string& name, int64_t intervalMs);
    void remove(const std::string& uuid) { setInterval(uuid, {}, 0); }
    bool timerActive() const { return m_timer.isActive(); }
    int watched() const { return int(m_domains.size()); }

signals:
    void due(const std::string& uuid, const std::string& name);

private:
    struct Entry
    {
        std::string name;
        int64_t intervalMs = 0;
        int64_t nextMs = 0; // monotonic
    };
    void rearm();
    void onTimer();
    int64_t jittered(int64_t intervalMs);
    // The QTimer's own clock (monotonic): the due times and the timer that
    // fires them must not disagree, so this is not the injectable qga::Clock.
    static int64_t nowMs();

    std::map<std::string, Entry> m_domains;
    QTimer m_timer;
    uint64_t m_rng = 0x9e3779b97f4a7c15ULL;
};

} // namespace clocksync
