// SPDX-License-Identifier: Apache-2.0
// SIGTERM/SIGINT/SIGHUP delivered on the Qt main loop (self-pipe trick).
#pragma once

#include <QObject>
#include <QSocketNotifier>

#include <memory>

namespace clocksync {

class UnixSignals : public QObject
{
    Q_OBJECT
public:
    explicit UnixSignals(QObject* parent = nullptr);
    bool install(std::initializer_list<int> sigs);

signals:
    void received(int signal);

private:
    std::unique_ptr<QSocketNotifier> m_notifier;
};

} // namespace clocksync
