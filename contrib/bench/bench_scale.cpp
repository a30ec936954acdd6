// SPDX-License-Identifier: Apache-2.0
// Scale without VMs: the daemon core (tracker + scheduler + engine) serving
// 100 and 1000 simulated guests (fake agents on a simulated clock), three
// resume waves each. Prints JSON: CPU time per sync and peak RSS.
#include "domaintracker.h"
#include "fakes.h"

#include <QCoreApplication>
#include <QEventLoop>

#include <cstdio>
#include <sys/resource.h>

using namespace clocksync;

static double cpuSeconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double peakRssMiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;
}

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    std::printf("[");
    bool first = true;
    for (int guests : {100, 1000}) {
        FakeClock clock;
        clock.perThread = true;
        FakeBackend backend(clock);
        Scheduler scheduler(backend, clock, 4);
        DomainTracker tracker(scheduler, clock);
        int done = 0;
        QEventLoop loop;
        QObject::connect(&tracker, &DomainTracker::syncFinished, [&](const SyncResult&) {
            if (++done % guests == 0)
                loop.quit();
        });
        const double cpu0 = cpuSeconds();
        const int waves = 3;
        for (int w = 0; w < waves; ++w) {
            for (int i = 0; i < guests; ++i) {
                const std::string u = "guest-" + std::to_string(i);
                FakeBackend::Domain d;
                d.offsetNs = -3'000'000'000; // each wave: paused 3 s
                backend.setDomain(u, d);
                tracker.trigger(u, u, Trigger::Resumed);
            }
            loop.exec();
        }
        const double cpu = cpuSeconds() - cpu0;
        std::printf(
            "%s{\"guests\": %d, \"syncs\": %d, \"cpu_us_per_sync\": %.2f, \"peak_rss_mib\": %.1f}",
            first ? "" : ", ", guests, done, cpu * 1e6 / done, peakRssMiB());
        first = false;
    }
    std::printf("]\n");
    return 0;
}
