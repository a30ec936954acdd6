// SPDX-License-Identifier: Apache-2.0
// The daemon's host watchers without touching the host: FakeClockSet stands
// for the timerfd (a pipe the test writes to when it "steps" the clock), and
// PrivateBus is a dbus-daemon of the test's own where it plays logind.
#pragma once

#include "clockstep.h"

#include <QFile>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>

#include <unistd.h>

class FakeClockSet final : public clocksync::ClockSetSource
{
public:
    ~FakeClockSet() override
    {
        for (int fd : m_pipe)
            if (fd >= 0)
                ::close(fd);
    }
    QString open() override { return ::pipe(m_pipe) == 0 ? QString() : QStringLiteral("pipe"); }
    int fd() const override { return m_pipe[0]; }
    bool arm() override
    {
        ++arms;
        return true;
    }
    bool takeSet() override
    {
        char c = 0;
        return ::read(m_pipe[0], &c, 1) == 1 && c == 'S';
    }
    int64_t realtimeMinusMonotonicNs() const override { return m_diffNs; }

    // The host clock is set by stepNs: the watcher wakes.
    void step(int64_t stepNs)
    {
        m_diffNs += stepNs;
        wake('S');
    }
    // A wake-up that is not a set (the far-future expiry).
    void wakeWithoutSet() { wake('E'); }

    int arms = 0;

private:
    void wake(char c) { (void)!::write(m_pipe[1], &c, 1); }
    int m_pipe[2] = {-1, -1};
    int64_t m_diffNs = 1'700'000'000'000'000'000;
};

// A dbus-daemon with a minimal configuration in a temporary directory.
class PrivateBus
{
public:
    // The bus's address; empty without a dbus-daemon or if it did not start.
    QString start()
    {
        const QString exe = QStandardPaths::findExecutable(QStringLiteral("dbus-daemon"));
        if (exe.isEmpty() || !m_dir.isValid())
            return {};
        QFile conf(m_dir.filePath(QStringLiteral("bus.conf")));
        if (!conf.open(QIODevice::WriteOnly))
            return {};
        conf.write("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                   "1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/"
                   "busconfig.dtd\">\n<busconfig><type>session</type><listen>unix:path=" +
                   m_dir.filePath(QStringLiteral("bus")).toUtf8() +
                   "</listen><auth>EXTERNAL</auth><policy context=\"default\">"
                   "<allow send_destination=\"*\"/><allow receive_sender=\"*\"/>"
                   "<allow own=\"*\"/></policy></busconfig>\n");
        conf.close();
        m_process.start(exe, {QStringLiteral("--nofork"), QStringLiteral("--print-address=1"),
                              QStringLiteral("--config-file=") + conf.fileName()});
        while (!m_process.canReadLine())
            if (!m_process.waitForReadyRead(10000))
                return {};
        return QString::fromUtf8(m_process.readLine()).trimmed();
    }
    ~PrivateBus()
    {
        m_process.kill();
        m_process.waitForFinished(5000);
    }

private:
    QTemporaryDir m_dir;
    QProcess m_process;
};

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-bus.h>

// A client of a PrivateBus that plays logind (or, without the name, an impostor).
class FakeLogind
{
public:
    ~FakeLogind() { sd_bus_flush_close_unref(m_bus); }
    bool open(const QString& address, bool ownName)
    {
        if (sd_bus_new(&m_bus) < 0 || sd_bus_set_address(m_bus, address.toUtf8().constData()) < 0 ||
            sd_bus_set_bus_client(m_bus, 1) < 0 || sd_bus_start(m_bus) < 0)
            return false;
        return !ownName || sd_bus_request_name(m_bus, "org.freedesktop.login1", 0) >= 0;
    }
    // Sends PrepareForSleep and returns once the bus has routed it: a method
    // call answered after the signal (one connection's messages keep order).
    bool prepareForSleep(bool sleeping)
    {
        if (sd_bus_emit_signal(m_bus, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                               "PrepareForSleep", "b", int(sleeping)) < 0)
            return false;
        sd_bus_message* reply = nullptr;
        const int r = sd_bus_call_method(m_bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetId", nullptr, &reply, "");
        sd_bus_message_unref(reply);
        return r >= 0;
    }

private:
    sd_bus* m_bus = nullptr;
};
#endif
