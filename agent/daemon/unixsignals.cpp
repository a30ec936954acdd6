// SPDX-License-Identifier: Apache-2.0
// Self-pipe signal delivery.
#include "unixsignals.h"

#include <csignal>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace clocksync {

static int g_signalFds[2] = {-1, -1};

static void onSignal(int sig)
{
    const unsigned char b = static_cast<unsigned char>(sig);
    (void)!::write(g_signalFds[0], &b, 1);
}

UnixSignals::UnixSignals(QObject* parent) : QObject(parent) {}

bool UnixSignals::install(std::initializer_list<int> sigs)
{
    if (g_signalFds[0] < 0 &&
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, g_signalFds) < 0)
        return false;
    m_notifier = std::make_unique<QSocketNotifier>(g_signalFds[1], QSocketNotifier::Read);
    connect(m_notifier.get(), &QSocketNotifier::activated, this, [this] {
        unsigned char b = 0;
        while (::read(g_signalFds[1], &b, 1) == 1)
            emit received(int(b));
    });
    struct sigaction sa
    {
    };
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int s : sigs)
        if (::sigaction(s, &sa, nullptr) < 0)
            return false;
    return true;
}

} // namespace clocksync
