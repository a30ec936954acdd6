// SPDX-License-Identifier: Apache-2.0
// SleepWatcher.
#include "sleepwatcher.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-bus.h>
#endif

#include <cstring>

namespace clocksync {

SleepWatcher::SleepWatcher(QObject* parent) : QObject(parent) {}

SleepWatcher::~SleepWatcher()
{
#ifdef HAVE_LIBSYSTEMD
    m_notifier.reset();
    sd_bus_slot_unref(static_cast<sd_bus_slot*>(m_slot));
    sd_bus_flush_close_unref(static_cast<sd_bus*>(m_bus));
#endif
}

#ifdef HAVE_LIBSYSTEMD
int SleepWatcher::onSignal(void* msg, void* userdata, void*) noexcept
{
    int sleeping = 0;
    if (sd_bus_message_read(static_cast<sd_bus_message*>(msg), "b", &sleeping) < 0)
        return 0;
    if (!sleeping)
        emit static_cast<SleepWatcher*>(userdata)->hostResumed();
    return 0;
}
#else
int SleepWatcher::onSignal(void*, void*, void*) noexcept
{
    return 0;
}
#endif

#ifdef HAVE_LIBSYSTEMD
namespace {
int openAt(const QString& address, sd_bus** out)
{
    sd_bus* bus = nullptr;
    int r = sd_bus_new(&bus);
    if (r >= 0)
        r = sd_bus_set_address(bus, address.toUtf8().constData());
    if (r >= 0)
        r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
        r = sd_bus_start(bus);
    if (r < 0) {
        sd_bus_unref(bus);
        return r;
    }
    *out = bus;
    return 0;
}
} // namespace
#endif

QString SleepWatcher::start()
{
#ifdef HAVE_LIBSYSTEMD
    sd_bus* bus = nullptr;
    int r = m_address.isEmpty() ? sd_bus_open_system(&bus) : openAt(m_address, &bus);
    if (r < 0)
        return QStringLiteral("no %1 (%2)")
            .arg(m_address.isEmpty() ? QStringLiteral("system bus") : m_address,
                 QString::fromLocal8Bit(std::strerror(-r)));
    m_bus = bus;
    sd_bus_slot* slot = nullptr;
    r = sd_bus_match_signal(bus, &slot, "org.freedesktop.login1", "/org/freedesktop/login1",
                            "org.freedesktop.login1.Manager", "PrepareForSleep",
                            reinterpret_cast<sd_bus_message_handler_t>(&SleepWatcher::onSignal),
                            this);
    if (r < 0)
        return QStringLiteral("cannot watch logind (%1)")
            .arg(QString::fromLocal8Bit(std::strerror(-r)));
    m_slot = slot;
    m_notifier = std::make_unique<QSocketNotifier>(sd_bus_get_fd(bus), QSocketNotifier::Read);
    connect(m_notifier.get(), &QSocketNotifier::activated, this, &SleepWatcher::process);
    process();
    return {};
#else
    return QStringLiteral("built without libsystemd");
#endif
}

void SleepWatcher::process()
{
#ifdef HAVE_LIBSYSTEMD
    auto* bus = static_cast<sd_bus*>(m_bus);
    while (sd_bus_process(bus, nullptr) > 0) {
    }
#endif
}

} // namespace clocksync
