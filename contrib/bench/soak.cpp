// SPDX-License-Identifier: Apache-2.0
// Memory soak: the daemon core (tracker + scheduler + engine) with 50
// simulated guests resuming over and over for a given time, with fake agents
// that now and then time out or answer garbage. Prints RSS after warm-up and
// at the end: it must stay flat. Usage: soak [SECONDS=600] [GUESTS=50]
#include "domaintracker.h"
#include "fakes.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>

#include <cstdio>
#include <fstream>
#include <string>

using namespace clocksync;

static long rssKiB()
{
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    const int seconds = argc > 1 ? std::atoi(argv[1]) : 600;
    const int guests = argc > 2 ? std::atoi(argv[2]) : 50;
    FakeClock clock;
    clock.perThread = true;
    FakeBackend backend(clock);
    Scheduler scheduler(backend, clock, 4);
    DomainTracker tracker(scheduler, clock);
    long syncs = 0, failures = 0, wave = 0, warmRss = 0;
    QEventLoop loop;
    QObject::connect(&tracker, &DomainTracker::syncFinished, [&](const SyncResult& r) {
        ++syncs;
        failures += r.outcome == Outcome::Failed;
        if (syncs % guests == 0)
            loop.quit();
    });
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < seconds * 1000LL) {
        for (int i = 0; i < guests; ++i) {
            const std::string u = "guest-" + std::to_string(i);
            FakeBackend::Domain d;
            d.offsetNs = -3'000'000'000;
            // Every 7th guest of every 5th wave has no agent: an error path.
            if (wave % 5 == 0 && i % 7 == 0)
                d.agentError = qga::makeError(qga::ErrorKind::Timeout, "simulated timeout");
            backend.setDomain(u, d);
            tracker.trigger(u, u, Trigger::Resumed);
        }
        loop.exec();
        if (++wave == 20)
            warmRss = rssKiB();
    }
    std::printf(
        "{\"seconds\": %d, \"guests\": %d, \"waves\": %ld, \"syncs\": %ld, \"failures\": %ld, "
        "\"rss_kib_after_warmup\": %ld, \"rss_kib_end\": %ld}\n",
        seconds, guests, wave, syncs, failures, warmRss, rssKiB());
    return 0;
}
