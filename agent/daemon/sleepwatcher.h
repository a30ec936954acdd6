// SPDX-License-Identifier: Apache-2.0
// Host wake-up from suspend/hibernate: logind's PrepareForSleep(false) on the
// system bus, read with sd-bus on the Qt main loop. Without libsystemd or a
// system bus it reports that it is unavailable and does nothing. Tests point it
// at a private bus of their own (setBusAddress), where they play logind.
#pragma once

#include <QObject>
#include <QSocketNotifier>

#include <memory>

namespace clocksync {

class SleepWatcher : public QObject
{
    Q_OBJECT
public:
    explicit SleepWatcher(QObject* parent = nullptr);
    ~SleepWatcher() override;
    // A D-Bus address ("unix:path=...") instead of the system bus; before start().
    void setBusAddress(const QString& address) { m_address = address; }
    // Returns an empty string on success, else why it cannot watch.
    QString start();

signals:
    void hostResumed();

private:
    void process();
    static int onSignal(void* msg, void* userdata, void* error) noexcept;

    QString m_address;
    void* m_bus = nullptr;
    void* m_slot = nullptr;
    std::unique_ptr<QSocketNotifier> m_notifier;
};

} // namespace clocksync
