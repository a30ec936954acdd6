// SPDX-License-Identifier: Apache-2.0
// A Hypervisor without libvirt: the test connects and disconnects it, sends
// domain events, and names the running domains; the backend is FakeBackend.
// The daemon's wiring is tested against it (tst_daemon), as ninja fakes its
// two I/O interfaces.
#pragma once

#include "fakes.h"
#include "hypervisor.h"

#include <QTimer>

#include <map>

class FakeHypervisor final : public clocksync::Hypervisor
{
public:
    explicit FakeHypervisor(FakeClock& clock) : fake(clock) {}

    FakeBackend fake;
    std::map<std::string, std::string> names; // uuid -> name of the domains that exist
    bool started = false;
    bool stopped = false;

    void start() override
    {
        started = true;
        setConnected(true);
    }
    void stop() override { stopped = true; }
    bool isConnected() const override { return m_connected; }
    int reconnects() const override { return m_reconnects; }
    QString uri() const override { return QStringLiteral("fake:///"); }
    // Asynchronous like libvirt's: answered from the event loop.
    void listRunning(std::function<void(qga::Expected<clocksync::DomainList>)> fn) override
    {
        if (!m_connected)
            return;
        if (failListing) {
            QTimer::singleShot(
                0, this, [fn] { fn(qga::makeError(qga::ErrorKind::Transport, "listing failed")); });
            return;
        }
        clocksync::DomainList running;
        for (const auto& [uuid, name] : names)
            if (auto r = fake.isRunning(uuid); r && *r)
                running.emplace_back(uuid, name);
        QTimer::singleShot(0, this, [fn, running] { fn(running); });
    }
    void listKnown(std::function<void(qga::Expected<clocksync::DomainList>)> fn) override
    {
        if (!m_connected)
            return;
        clocksync::DomainList known(names.begin(), names.end());
        QTimer::singleShot(0, this, [fn, known] { fn(known); });
    }
    clocksync::DomainBackend& backend() override { return fake; }
    bool failListing = false; // listRunning answers with an error

    void setConnected(bool c)
    {
        if (c == m_connected)
            return;
        m_connected = c;
        if (c) {
            emit connected();
        } else {
            ++m_reconnects;
            emit disconnected(QStringLiteral("test"));
        }
    }
    void event(const std::string& uuid, clocksync::EventAction a)
    {
        emit domainEvent(QString::fromStdString(uuid), QString::fromStdString(names[uuid]), a);
    }

private:
    bool m_connected = false;
    int m_reconnects = 0;
};
