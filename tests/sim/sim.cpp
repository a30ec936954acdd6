// SPDX-License-Identifier: Apache-2.0
// clocksync-sim: the daemon's real core -- Daemon, tracker, scheduler, jobs,
// sync engine, policy, config reload, control requests -- run single-threaded
// on simulated time against a simulated libvirt host (simworld.h). Every
// schedule is drawn from its seed: the same seed is the same run, event for
// event. The invariants of docs/design.md §11 are checked after every step
// (and every set is checked as it happens); a violation prints the seed and
// the schedule's trace.
//
//   clocksync-sim [--seed N] [--schedules N] [--steps N] [--verbose]
#include "daemon.h"
#include "simworld.h"
#include "virtualdispatcher.h"

#include <QCoreApplication>
#include <QLoggingCategory>
#include <QTemporaryDir>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

using namespace clocksync;
using sim::ClockKind;
using sim::Domain;

namespace {

// The worker pool, made deterministic: one job at a time, on the main thread,
// chosen by the seed among those a pool of `concurrency` workers could start.
class SeededExecutor final : public Executor
{
public:
    SeededExecutor(std::mt19937_64& rng, int concurrency) : m_rng(rng), m_width(concurrency) {}
    void submit(std::function<void()> job) override { m_queue.push_back(std::move(job)); }
    void submitLater(std::function<void()> job, int64_t rank) override
    {
        m_later.emplace(rank, std::move(job));
    }
    bool hasQueued() override { return !m_queue.empty(); }
    bool waitForDone(int) override
    {
        while (runOne()) {
        }
        return true;
    }
    bool idle() const { return m_queue.empty() && m_later.empty(); }
    bool runOne()
    {
        std::function<void()> job;
        if (!m_queue.empty()) {
            const std::size_t width = std::min<std::size_t>(m_queue.size(), std::size_t(m_width));
            const std::size_t i = std::uniform_int_distribution<std::size_t>(0, width - 1)(m_rng);
            job = std::move(m_queue[i]);
            m_queue.erase(m_queue.begin() + std::ptrdiff_t(i));
        } else if (!m_later.empty()) {
            job = std::move(m_later.begin()->second);
            m_later.erase(m_later.begin());
        } else {
            return false;
        }
        job();
        return true;
    }

private:
    std::mt19937_64& m_rng;
    int m_width;
    std::deque<std::function<void()>> m_queue;
    std::multimap<int64_t, std::function<void()>, std::greater<>> m_later;
};

// A ClockSetSource that is never available: host clock steps are injected.
class NoClockSet final : public ClockSetSource
{
public:
    QString open() override { return QStringLiteral("simulated host"); }
    int fd() const override { return -1; }
    bool arm() override { return false; }
    bool takeSet() override { return false; }
    int64_t realtimeMinusMonotonicNs() const override { return 0; }
};

const char* const kPolicies[] = {
    "",                                                  // none: the defaults
    "<policy mode='off'/>",                              // leave alone
    "<policy mode='host'/>",                             //
    "<policy mode='host-utc'/>",                         // UTC whatever the clock
    "<policy mode='rtc'/>",                              // the guest re-reads its RTC
    "<policy mode='of'/>",                               // a typo: fail closed
    "<policy tolerance-us='5000'/>",                     //
    "<policy enabled='no'/>",                            //
    "<policy mode='host'",                               // not XML
    "<policy mode='host' resync='1'/>",                  // a resync request
    "<policy sync-on-boot='yes'/>",                      // synced as it boots
    "<policy watch-interval='60'/>",                     // drift watch, measure only
    "<policy watch-interval='60' watch-correct='yes'/>", // drift watch that corrects
};
constexpr int64_t kLastPolicy = int64_t(std::size(kPolicies)) - 1;

QString withNs(const char* p)
{
    QString s = QString::fromLatin1(p);
    if (s.startsWith("<policy"))
        s.insert(7, " xmlns='https://virt-clocksync.org/xmlns/policy/1'");
    return s;
}

struct Options
{
    uint64_t seed = 1;
    int schedules = 1;
    int steps = 150;
    bool verbose = false;
    bool listFailing = false; // every failing seed, one line each, no traces
    // Seeds of open findings (docs/design.md §11), each with the violation
    // its first failure must start with ("invariant 2: vm1 (variable"):
    // another failure of a listed seed is a new finding, not the open one.
    std::map<uint64_t, std::string> known;
};

class Schedule
{
public:
    Schedule(FakeClock& clock, VirtualDispatcher& dispatcher, uint64_t seed, const QString& dir)
        : m_clock(clock), m_disp(dispatcher), w(clock, seed), m_seed(seed), m_dir(dir)
    {
    }

    bool run(int steps);
    const std::vector<std::string>& trace() const { return w.trace; }
    const std::vector<sim::Violation>& violations() const { return w.violations; }
    int sets() const { return w.sets; }

private:
    void setUp();
    void step();
    void quiet();
    void deliverOne(bool mayRepeat);
    void checkAlways();
    void checkMetrics();
    void checkAtRest();
    void act();
    Domain& newDomain(bool persistent, Domain::State state);
    Domain* pick(std::function<bool(const Domain&)> ok);
    void ev(Domain& d, EventAction::Kind k, Trigger t, const std::string& label, bool done = false)
    {
        w.emitEvent(d.uuid, {k, t, done}, label + " " + d.name);
    }
    void stopClock(Domain& d) { d.pausedAtNs = m_clock.realtimeNs(); }
    void runClock(Domain& d) { d.guestOffsetNs -= m_clock.realtimeNs() - d.pausedAtNs; }
    void bootClock(Domain& d)
    {
        // Booted: the guest reads its RTC, whole seconds, a little behind.
        d.liveAdjustmentS = d.adjustmentS;
        d.intendedNs = d.adjustmentS * 1'000'000'000;
        const std::optional<int64_t> want = w.intendedOffsetNs(d);
        d.guestOffsetNs = (want ? *want : 0) - w.draw(0, 999'999'999);
    }
    void agentBack(Domain& d)
    {
        if (!d.agentChannel)
            return;
        d.agentUp = true;
        ev(d, EventAction::AgentConnected, Trigger::Resumed, "agent-connected");
    }
    void agentGone(Domain& d)
    {
        if (d.agentUp && d.agentChannel)
            ev(d, EventAction::AgentDisconnected, Trigger::Resumed, "agent-disconnected");
        d.agentUp = false;
    }
    void hostEvent(const std::string& label, Trigger t, int64_t stepNs = 0)
    {
        w.events.push_back({"", {EventAction::Sync, t, false}, label, stepNs, false, std::nullopt});
    }
    void owe(Domain& d) { m_owed.insert(d.uuid); }
    // Destroyed, booted or migrated away: a trigger before it owes nothing
    // after it (a request's reply that comes later included).
    void endLife(Domain& d)
    {
        m_owed.erase(d.uuid);
        ++m_lives[d.uuid];
    }
    // A boot is owed a sync only where the policy asks for one.
    void bootOwed(Domain& d)
    {
        bool problem = false;
        if (w.effectivePolicy(d, &problem).syncOnBoot && !problem)
            owe(d);
    }

    FakeClock& m_clock;
    VirtualDispatcher& m_disp;
    sim::World w;
    uint64_t m_seed;
    QString m_dir;
    SeededExecutor* m_exec = nullptr;
    sim::SimHypervisor* m_hv = nullptr;
    std::unique_ptr<Daemon> m_daemon;
    int m_nextId = 0;
    std::set<std::string> m_owed;       // a trigger since boot: it must end in tolerance
    std::map<std::string, int> m_lives; // boots, destroys, migrations of each domain
    std::map<std::string, uint64_t> m_lastGeneration;
    int m_requests = 0;
    int m_replies = 0;
    // Results the daemon published, by their syncs_total labels.
    std::map<std::string, uint64_t> m_publishedBy;
};

Domain& Schedule::newDomain(bool persistent, Domain::State state)
{
    const int id = m_nextId++;
    Domain d;
    char uuid[40];
    std::snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", id);
    d.uuid = uuid;
    d.name = "vm" + std::to_string(id);
    d.persistent = persistent;
    d.state = state;
    const ClockKind kinds[] = {ClockKind::Utc,         ClockKind::Utc,
                               ClockKind::Localtime,   ClockKind::Timezone,
                               ClockKind::VariableUtc, ClockKind::VariableLocaltime,
                               ClockKind::Absolute};
    d.clock = kinds[w.draw(0, 6)];
    // A transient domain's live XML has lost basis='localtime' (libvirt
    // converts it): nobody can know its intended time; not simulated.
    if (d.clock == ClockKind::VariableLocaltime && !persistent)
        d.clock = ClockKind::VariableUtc;
    if (d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime)
        d.adjustmentS = w.chance(0.5) ? 3600 : -w.draw(1, 90'000);
    d.liveAdjustmentS = d.adjustmentS;
    d.intendedNs = d.adjustmentS * 1'000'000'000;
    d.agentChannel = !w.chance(0.08);
    d.noHwclock = w.chance(0.1);
    d.rttNs = w.draw(400'000, 3'000'000);
    d.setDelayNs = d.rttNs / 2 + w.draw(0, 500'000);
    if (w.chance(0.12)) { // a Windows guest: 15.6 ms ticks, whole-millisecond sets
        d.tickNs = 15'625'000;
        d.setWholeMs = true;
    }
    const int p = w.chance(0.55) ? 0 : int(w.draw(1, kLastPolicy));
    d.livePolicy = d.configPolicy = withNs(kPolicies[p]);
    if (state == Domain::State::Running) {
        bootClock(d);
        d.agentUp = d.agentChannel;
    }
    w.log("new " + std::string(persistent ? "persistent" : "transient") + " " + d.name + " clock " +
          clockKindName(d.clock) + " adj " + std::to_string(d.adjustmentS) +
          (d.tickNs ? " windows" : "") + (d.noHwclock ? " no-hwclock" : "") +
          (d.agentChannel ? "" : " no-channel") + " policy " + d.livePolicy.toStdString());
    return w.domains[d.uuid] = d;
}

Domain* Schedule::pick(std::function<bool(const Domain&)> ok)
{
    std::vector<Domain*> c;
    for (auto& [uuid, d] : w.domains)
        if (d.exists && ok(d))
            c.push_back(&d);
    if (c.empty())
        return nullptr;
    return c[std::size_t(w.draw(0, int64_t(c.size()) - 1))];
}

void Schedule::setUp()
{
    w.hostUtcOffsetS = std::array<int64_t, 3>{0, 3600, -18000}[std::size_t(w.draw(0, 2))];
    const int n = int(w.draw(2, 5));
    for (int i = 0; i < n; ++i)
        newDomain(!w.chance(0.2), w.chance(0.75) ? Domain::State::Running : Domain::State::Shutoff);
    DaemonConfig c;
    c.controlSocket = m_dir + "/control.sock";
    c.agentWaitSeconds = int(w.draw(10, 60));
    c.concurrency = int(w.draw(1, 4));
    w.defaults = c.policy;
    auto hv = std::make_unique<sim::SimHypervisor>(w);
    m_hv = hv.get();
    auto exec = std::make_unique<SeededExecutor>(w.rng, c.concurrency);
    m_exec = exec.get();
    m_daemon = std::make_unique<Daemon>(c, std::move(hv), m_clock, std::move(exec));
    m_daemon->setHostWatchSources(QStringLiteral("unix:path=/nonexistent/sim-bus"),
                                  std::make_unique<NoClockSet>());
    QObject::connect(m_daemon.get(), &Daemon::syncFinished, [this](const SyncResult& r) {
        ++m_publishedBy["{trigger=\"" + std::string(triggerName(r.trigger)) + "\",result=\"" +
                        outcomeName(r.outcome) + "\"}"];
        w.log("  result " + r.domain + " #" + std::to_string(r.generation) + " " + describe(r));
    });
    // While a job is inside an agent call, the main loop goes on: the world
    // changes, and the daemon handles the events already sent (a pause, a
    // policy change reaching it mid-sync).
    w.onInterfere = [this] {
        act();
        for (int64_t k = w.draw(0, 2); k > 0; --k)
            deliverOne(false);
    };
    w.interfere = 0.03; // an agent call in 33 lets something else happen meanwhile
    if (const QString err = m_daemon->start(); !err.isEmpty())
        w.fail("daemon did not start: " + err.toStdString());
    // Every running guest is checked at start (reconcile).
    for (auto& [uuid, d] : w.domains)
        if (d.state == Domain::State::Running)
            owe(d);
}

// One world action, drawn from the seed.
void Schedule::act()
{
    const int64_t now = m_clock.realtimeNs();
    (void)now;
    switch (w.draw(0, 27)) {
    case 0:
    case 1:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            w.log("pause " + d->name);
            d->state = Domain::State::Paused;
            stopClock(*d);
            ev(*d, EventAction::Cancel, Trigger::Resumed, "suspended");
        }
        break;
    case 2:
    case 3:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Paused; })) {
            w.log("resume " + d->name);
            d->state = Domain::State::Running;
            runClock(*d);
            owe(*d);
            ev(*d, EventAction::Sync, Trigger::Resumed, "resumed");
        }
        break;
    case 4:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            w.log("save " + d->name);
            d->state = Domain::State::Saved;
            stopClock(*d);
            agentGone(*d);
            ev(*d, EventAction::Stop, Trigger::Resumed, "stopped-saved");
        }
        break;
    case 5:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Saved; })) {
            w.log("restore " + d->name);
            d->state = Domain::State::Running;
            runClock(*d);
            owe(*d);
            ev(*d, EventAction::SyncWhenAgent, Trigger::Restored, "started-restored");
            ev(*d, EventAction::Sync, Trigger::SnapshotReverted, "resumed-from-snapshot");
            agentBack(*d);
        }
        break;
    case 6:
        if (Domain* d = pick([](const Domain& x) {
                return x.state == Domain::State::Running || x.state == Domain::State::Paused;
            })) {
            w.log("destroy " + d->name);
            d->state = Domain::State::Shutoff;
            agentGone(*d);
            if (!d->persistent) {
                d->exists = false;
                ev(*d, EventAction::Stop, Trigger::Resumed, "stopped-destroyed (transient)");
            } else {
                ev(*d, EventAction::Stop, Trigger::Resumed, "stopped-destroyed");
            }
            endLife(*d);
        }
        break;
    case 7:
        if (Domain* d = pick([](const Domain& x) {
                return x.persistent && (x.state == Domain::State::Shutoff);
            })) {
            w.log("start " + d->name);
            d->state = Domain::State::Running;
            d->livePolicy = d->configPolicy; // a boot applies the persistent definition
            bootClock(*d);
            endLife(*d);
            bootOwed(*d);
            ev(*d, EventAction::SyncIfBootPolicy, Trigger::Booted, "started-booted");
            agentBack(*d);
        }
        break;
    case 8:
        if (w.domains.size() < 8) {
            Domain& d = newDomain(w.chance(0.5),
                                  w.chance(0.5) ? Domain::State::Running : Domain::State::Shutoff);
            if (d.state == Domain::State::Running) {
                w.log("create/start " + d.name);
                d.agentUp = false;
                bootOwed(d);
                ev(d, EventAction::SyncIfBootPolicy, Trigger::Booted, "started-booted");
                agentBack(d);
            } else if (!d.persistent) {
                d.exists = false; // a transient domain exists only while it runs
            }
        }
        break;
    case 9:
        if (Domain* d = pick([](const Domain& x) {
                return x.persistent && (x.clock != ClockKind::VariableLocaltime ||
                                        x.state == Domain::State::Shutoff);
            })) {
            w.log("undefine " + d->name);
            ev(*d, EventAction::Undefined, Trigger::Resumed, "undefined");
            if (d->state == Domain::State::Shutoff || d->state == Domain::State::Saved)
                d->exists = false;
            else
                d->persistent = false; // a running domain undefined goes on, transient
        }
        break;
    case 10:
        if (Domain* d = pick([](const Domain& x) {
                return x.persistent || x.state == Domain::State::Running;
            })) {
            w.log("snapshot-revert " + d->name);
            const bool wasRunning = d->state == Domain::State::Running;
            d->state = Domain::State::Running;
            d->guestOffsetNs = -w.draw(1, 3 * 86'400) * 1'000'000'000;
            owe(*d);
            if (wasRunning) {
                agentGone(*d);
                ev(*d, EventAction::Sync, Trigger::SnapshotReverted, "resumed-from-snapshot");
            } else {
                ev(*d, EventAction::SyncWhenAgent, Trigger::SnapshotReverted,
                   "started-from-snapshot");
            }
            agentBack(*d);
        }
        break;
    case 11:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            const bool fails = w.chance(0.4);
            w.log(std::string("migrate out ") + d->name + (fails ? " (fails)" : ""));
            stopClock(*d);
            ev(*d, EventAction::Cancel, Trigger::Resumed, "suspended-migrated");
            m_clock.advance(w.draw(100'000'000, 400'000'000));
            if (fails) {
                runClock(*d);
                owe(*d);
                ev(*d, EventAction::MigrationResumed, Trigger::MigratedIn, "resumed-migrated",
                   true);
            } else {
                d->exists = false;
                d->state = Domain::State::Shutoff;
                ev(*d, EventAction::Forget, Trigger::Resumed, "stopped-migrated");
                endLife(*d);
            }
        }
        break;
    case 12:
        if (w.domains.size() < 8) {
            Domain& d = newDomain(w.chance(0.6), Domain::State::Running);
            const bool postcopy = w.chance(0.3);
            w.log("migrate in " + d.name + (postcopy ? " (post-copy)" : ""));
            d.guestOffsetNs += w.draw(-500'000'000, 500'000'000);
            owe(d);
            ev(d, EventAction::IncomingMigration, Trigger::MigratedIn, "started-migrated");
            if (postcopy)
                ev(d, EventAction::MigrationResumed, Trigger::MigratedIn, "resumed-postcopy");
            ev(d, EventAction::MigrationResumed, Trigger::MigratedIn, "resumed-migrated", true);
        }
        break;
    case 13:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            w.log("pm-suspend/wakeup " + d->name);
            ev(*d, EventAction::Cancel, Trigger::Resumed, "pmsuspended");
            const int64_t asleep = w.draw(1, 600) * 1'000'000'000;
            m_clock.advance(asleep);
            d->guestOffsetNs -= asleep;
            owe(*d);
            ev(*d, EventAction::Sync, Trigger::PmWakeup, "pmwakeup");
        }
        break;
    case 14:
    case 15:
        if (Domain* d = pick([](const Domain&) { return true; })) {
            const QString p = withNs(kPolicies[w.draw(0, kLastPolicy)]);
            switch (w.draw(0, 3)) {
            case 0: // virsh metadata --live --config, virt-clocksync policy --set
                w.log("policy (live+config) " + d->name + " " + p.toStdString());
                if (d->state != Domain::State::Shutoff)
                    d->livePolicy = p;
                if (d->persistent)
                    d->configPolicy = p;
                if (d->state == Domain::State::Shutoff)
                    d->livePolicy = d->configPolicy;
                ev(*d, EventAction::PolicyChanged, Trigger::PolicyChanged, "metadata-change");
                break;
            case 1: // virsh metadata --live
                if (d->state == Domain::State::Shutoff)
                    break;
                w.log("policy (live only) " + d->name + " " + p.toStdString());
                d->livePolicy = p;
                ev(*d, EventAction::PolicyChanged, Trigger::PolicyChanged, "metadata-change");
                break;
            case 2: // virsh metadata --config
                if (!d->persistent)
                    break;
                w.log("policy (config only) " + d->name + " " + p.toStdString());
                d->configPolicy = p;
                if (d->state == Domain::State::Shutoff)
                    d->livePolicy = p;
                ev(*d, EventAction::PolicyChanged, Trigger::PolicyChanged, "metadata-change");
                break;
            case 3: // virt-manager's XML editor: virsh define
                if (!d->persistent)
                    break;
                w.log("define (XML editor) " + d->name + " " + p.toStdString());
                d->configPolicy = p;
                if (d->state == Domain::State::Shutoff)
                    d->livePolicy = p;
                ev(*d, EventAction::PolicyChanged, Trigger::PolicyChanged, "defined-updated");
                break;
            }
        }
        break;
    case 16:
        if (Domain* d = pick([](const Domain& x) {
                return x.state == Domain::State::Running &&
                       (x.clock == ClockKind::VariableUtc ||
                        x.clock == ClockKind::VariableLocaltime);
            })) {
            const int64_t by = w.chance(0.5) ? 3600 : -7200;
            w.log("guest sets its clock and RTC on purpose " + d->name + " by " +
                  std::to_string(by) + " s");
            // What it set is what it means, whatever its clock read before.
            const int64_t prior = d->intendedNs;
            d->guestOffsetNs += by * 1'000'000'000;
            d->intendedNs = d->guestOffsetNs;
            w.rtcWritten(*d);
            w.emitEvent(d->uuid, w.rtcEvent(*d), "rtc-change " + d->name);
            if (!w.events.empty() && w.events.back().uuid == d->uuid)
                w.events.back().priorIntendedNs = prior;
        }
        break;
    case 17:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            // The guest's NTP will step its clock to the right time (within
            // its own accuracy) at its next read.
            if (const std::optional<int64_t> want = w.intendedOffsetNs(*d)) {
                d->ntpStepNs = *want + w.draw(-200'000, 200'000) - d->guestOffsetNs;
                w.log("guest NTP of " + d->name + " will step by " + formatOffset(d->ntpStepNs));
            }
        }
        break;
    case 18:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            if (d->agentUp) {
                w.log("agent of " + d->name + " disconnects");
                agentGone(*d);
            } else {
                w.log("agent of " + d->name + " connects");
                agentBack(*d);
            }
        }
        break;
    case 19:
        if (Domain* d = pick([](const Domain& x) { return x.state == Domain::State::Running; })) {
            d->agentStalled = !d->agentStalled;
            w.log("agent of " + d->name + (d->agentStalled ? " stalls" : " answers again"));
        }
        break;
    case 20: {
        const int64_t step = (w.chance(0.5) ? 1 : -1) * w.draw(1'000'000, 3'600'000'000'000);
        w.log("host clock stepped by " + formatOffset(step));
        m_clock.stepRealtime(step);
        for (auto& [uuid, d] : w.domains) {
            d.guestOffsetNs -= step;
            d.pausedAtNs += step;
            if (d.exists && d.state == Domain::State::Running)
                owe(d);
        }
        hostEvent("host clock step", Trigger::HostClockStep, step);
        break;
    }
    case 21: {
        const int64_t asleep = w.draw(1, 3600) * 1'000'000'000;
        w.log("host sleeps " + formatOffset(asleep));
        m_clock.advance(asleep);
        for (auto& [uuid, d] : w.domains) {
            d.guestOffsetNs -= asleep;
            if (d.exists && d.state == Domain::State::Running)
                owe(d);
        }
        hostEvent("host woke", Trigger::HostWake);
        break;
    }
    case 22:
        if (m_hv->isConnected() && w.chance(0.5)) {
            w.log("libvirt connection lost");
            m_hv->setConnected(false);
        } else if (!m_hv->isConnected()) {
            w.log("libvirt reconnected");
            for (auto& [uuid, d] : w.domains)
                if (d.exists && d.state == Domain::State::Running)
                    owe(d);
            m_hv->setConnected(true);
        }
        break;
    case 23:
        w.failListing = !w.failListing;
        w.log(std::string("listing domains ") + (w.failListing ? "fails" : "works again"));
        break;
    case 24:
        w.policyReadFails = w.chance(0.3);
        w.metadataWriteFails = w.chance(0.3);
        w.log(std::string("metadata reads ") + (w.policyReadFails ? "fail" : "work") + ", writes " +
              (w.metadataWriteFails ? "fail" : "work"));
        break;
    case 25:
    case 26: {
        ControlRequest req;
        req.command = ControlCommand::Sync;
        Domain* d = w.chance(0.3)
                        ? nullptr
                        : pick([](const Domain& x) { return x.state == Domain::State::Running; });
        if (d)
            req.domains = {d->name};
        else
            req.all = true;
        if (w.chance(0.3))
            req.tuning = {int(w.draw(1, 9)), int(w.draw(1, 5))};
        w.log("request: sync " + (d ? d->name : std::string("--all")));
        ++m_requests;
        // A request refused (not connected, no such domain, the listing
        // failed) owes the guests nothing: the operator was told.
        m_daemon->controlHandler().handle(req, [this, lives = m_lives](const nlohmann::json& j) {
            ++m_replies;
            if (j.value("ok", false))
                for (const auto& r : j.value("results", nlohmann::json::array())) {
                    // A request cancelled by a pause or a stop owes nothing more,
                    // nor one answered after the guest was destroyed or booted
                    // (seed 2320: owed by a reply that came after a reboot).
                    const std::string outcome = r.value("outcome", std::string());
                    Domain* x = w.find(r.value("uuid", std::string()));
                    const auto life = [](const std::map<std::string, int>& m, const Domain& y) {
                        const auto it = m.find(y.uuid);
                        return it == m.end() ? 0 : it->second;
                    };
                    if (x && life(lives, *x) == life(m_lives, *x) && outcome != "cancelled" &&
                        outcome != "skipped")
                        owe(*x);
                }
            w.log("  reply " + j.dump().substr(0, 160));
        });
        break;
    }
    case 27: {
        DaemonConfig c = m_daemon->config();
        c.policy.mode = w.chance(0.25) ? SyncMode::Off : SyncMode::Host;
        c.policy.toleranceNs = w.chance(0.5) ? 1'000'000 : 5'000'000;
        c.agentWaitSeconds = int(w.draw(10, 60));
        w.log(std::string("reload: mode ") + syncModeName(c.policy.mode) + " tolerance-us " +
              std::to_string(c.policy.toleranceNs / 1000));
        m_daemon->reload(c);
        w.defaults = c.policy;
        break;
    }
    }
}

void Schedule::step()
{
    const int64_t r = w.draw(0, 19);
    if (r <= 6) {
        m_exec->runOne();
    } else if (r <= 11) {
        deliverOne(true);
    } else if (r <= 16) {
        act();
    } else {
        const std::optional<int64_t> next = m_disp.nextDeadline();
        const int64_t now = m_clock.monotonicNs();
        int64_t by = w.draw(1'000'000, 30'000'000'000);
        if (next && *next > now && w.chance(0.5))
            by = *next - now;
        m_clock.advance(by);
    }
    m_disp.settle();
    checkAlways();
}

// The next event libvirt (or the host) sends, to the daemon's main loop;
// some are delivered twice.
void Schedule::deliverOne(bool mayRepeat)
{
    if (w.events.empty())
        return;
    sim::PendingEvent e = w.events.front();
    w.events.pop_front();
    if (mayRepeat && w.chance(0.03))
        w.events.push_front(e); // delivered twice
    w.log("event " + e.label);
    if (e.uuid.empty()) {
        if (e.action.trigger == Trigger::HostClockStep)
            m_daemon->onHostClockStep(e.hostStepNs);
        else
            m_daemon->syncAllRunning(e.action.trigger);
    } else {
        m_hv->deliver(e);
    }
}

// Heal the host, deliver everything, run every job, let every timer fire,
// for a bounded time: then every guest owed a sync must be right.
void Schedule::quiet()
{
    w.log("-- quiet: agents answer, libvirt connected, nothing new happens");
    w.onInterfere = nullptr;
    w.failListing = false;
    w.policyReadFails = false;
    w.metadataWriteFails = false;
    if (!m_hv->isConnected()) {
        for (auto& [uuid, d] : w.domains)
            if (d.exists && d.state == Domain::State::Running)
                owe(d);
        m_hv->setConnected(true);
    }
    for (auto& [uuid, d] : w.domains) {
        d.agentStalled = false;
        if (d.exists && d.state == Domain::State::Running && !d.agentUp)
            agentBack(d);
    }
    const int64_t horizon = m_clock.monotonicNs() + 20LL * 60 * 1'000'000'000;
    while (m_clock.monotonicNs() < horizon) {
        m_disp.settle();
        if (!w.events.empty()) {
            deliverOne(false);
        } else if (!m_exec->idle()) {
            m_exec->runOne();
        } else if (const std::optional<int64_t> next = m_disp.nextDeadline()) {
            m_clock.advance(std::max<int64_t>(0, *next - m_clock.monotonicNs()));
        } else {
            break;
        }
        checkAlways();
    }
    m_disp.settle();
}

// After every step.
void Schedule::checkAlways()
{
    // 4: a result is published (kept as the domain's last) only for the job
    // current for its domain: its generation never goes back.
    std::set<std::string> tracked;
    for (const DomainStatus& s : m_daemon->tracker().status()) {
        tracked.insert(s.uuid);
        if (!s.last)
            continue;
        uint64_t& seen = m_lastGeneration[s.uuid];
        if (s.last->generation < seen)
            w.fail("invariant 4: " + s.name + "'s last result went from job #" +
                   std::to_string(seen) + " back to #" + std::to_string(s.last->generation));
        seen = s.last->generation;
    }
    for (auto it = m_lastGeneration.begin(); it != m_lastGeneration.end();)
        it = tracked.count(it->first) ? std::next(it) : m_lastGeneration.erase(it);
    // 6: status is the tracker.
    const nlohmann::json st = m_daemon->controlHandler().statusJson({});
    if (st["domains"].size() != m_daemon->tracker().status().size())
        w.fail("invariant 6: status lists " + std::to_string(st["domains"].size()) +
               " domains, the tracker " + std::to_string(tracked.size()));
}

// 6, the metrics as the daemon keeps them between scrapes (the textfile is
// this; a scrape refreshes the gauges first): each (trigger, result) series
// counts exactly the results published with them, series exist only for
// tracked domains, the tracked gauge is the tracker's, and each domain's
// offset gauge is the one its last result measured.
void Schedule::checkMetrics()
{
    const std::vector<DomainStatus> status = m_daemon->tracker().status();
    std::set<std::string> names; // of the tracked
    for (const DomainStatus& s : status)
        names.insert(s.name);
    std::map<std::string, uint64_t> counted; // the syncs_total series' labels -> value
    std::map<std::string, double> offsets;   // name -> the offset gauge
    const std::string text = m_daemon->metrics().render(m_clock.realtimeNs());
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line[0] == '#')
            continue;
        const size_t space = line.rfind(' ');
        const std::string value = line.substr(space + 1);
        static const std::string kSyncs = "virt_clocksync_syncs_total";
        if (line.rfind(kSyncs + "{", 0) == 0)
            counted[line.substr(kSyncs.size(), space - kSyncs.size())] = std::stoull(value);
        if (line.rfind("virt_clocksync_guests_tracked ", 0) == 0 &&
            std::stoull(value) != names.size())
            w.fail("invariant 6: metrics say " + value + " guests tracked, the tracker " +
                   std::to_string(names.size()));
        const size_t label = line.find("{domain=\"");
        if (label == std::string::npos)
            continue;
        const size_t from = label + 9;
        const std::string name = line.substr(from, line.find('"', from) - from);
        if (!names.count(name))
            w.fail("invariant 6: metrics keep a series of " + name +
                   ", which is not tracked: " + line);
        if (line.rfind("virt_clocksync_guest_offset_seconds{", 0) == 0)
            offsets[name] = std::stod(value);
    }
    for (const auto& [labels, n] : counted) {
        const auto it = m_publishedBy.find(labels);
        const uint64_t want = it == m_publishedBy.end() ? 0 : it->second;
        if (n != want)
            w.fail("invariant 6: metrics count " + std::to_string(n) + " results " + labels + ", " +
                   std::to_string(want) + " were published");
    }
    for (const auto& [labels, n] : m_publishedBy)
        if (!counted.count(labels))
            w.fail("invariant 6: no syncs_total series " + labels + " for " + std::to_string(n) +
                   " published results");
    for (const DomainStatus& s : status) {
        if (!s.last)
            continue;
        const std::optional<Measurement>& m = s.last->after ? s.last->after : s.last->before;
        if (!m)
            continue;
        const auto it = offsets.find(s.name);
        if (it == offsets.end() || std::fabs(it->second - m->offsetNs / 1e9) > 1e-9)
            w.fail("invariant 6: " + s.name + "'s offset gauge is " +
                   (it == offsets.end() ? std::string("missing") : std::to_string(it->second)) +
                   ", its last result measured " + formatOffset(m->offsetNs));
    }
}

// At rest, after the quiet phase.
void Schedule::checkAtRest()
{
    // 5: what is tracked is what libvirt has.
    for (const DomainStatus& s : m_daemon->tracker().status()) {
        const Domain* d = w.find(s.uuid);
        if (!d)
            w.fail("invariant 5: " + s.name + " is still tracked, libvirt has no such domain");
        else if (s.state != DomainState::Idle)
            w.fail("invariant 3: " + s.name + " still " + domainStateName(s.state) +
                   " after the quiet phase");
    }
    // 3: every running guest whose agent answers ends within its tolerance
    // after a trigger (or its status names why it may not be).
    for (auto& [uuid, d] : w.domains) {
        if (!d.exists || d.state != Domain::State::Running || !d.agentChannel ||
            !m_owed.count(uuid))
            continue;
        std::string why;
        const std::optional<int64_t> want = w.intendedOffsetNs(d);
        if (!want || !w.mayBeSet(d, &why))
            continue;
        bool problem = false;
        const SyncPolicy p = w.effectivePolicy(d, &problem);
        const int64_t tol = std::max(p.toleranceNs, 2 * d.tickNs) + 200'000;
        int64_t off = d.guestOffsetNs - *want;
        // A variable clock's adjustment is known to libvirt's whole second
        // only (see invariant 2): the daemon aims at a whole second within
        // one of the intended time (a guest's own change need not be whole).
        // A second off either way is that, not drift (walking further, a
        // second per sync, is caught by invariant 2); the guest must still
        // sit on the whole second it was aimed at, within tolerance.
        const bool followed =
            d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime;
        if (followed && std::llabs(off) <= 1'000'000'000 + tol) {
            const int64_t frac =
                ((d.guestOffsetNs % 1'000'000'000) + 1'000'000'000) % 1'000'000'000;
            off = frac > 500'000'000 ? frac - 1'000'000'000 : frac;
        }
        if (std::llabs(off) <= tol)
            continue;
        std::string last = "no result";
        for (const DomainStatus& s : m_daemon->tracker().status())
            if (s.uuid == uuid && s.last)
                last = describe(*s.last);
        w.fail("invariant 3: " + d.name + " ends " + formatOffset(off) +
               " from its intended time (tolerance " + formatOffset(tol) + "); status: " + last);
    }
    checkMetrics(); // rendering them after every step doubles the run's time
    if (m_replies != m_requests)
        w.fail("a control request was never answered (" + std::to_string(m_requests) + " asked, " +
               std::to_string(m_replies) + " answered)");
}

bool Schedule::run(int steps)
{
    w.log("seed " + std::to_string(m_seed));
    setUp();
    m_disp.settle();
    for (int i = 0; i < steps && w.violations.empty(); ++i)
        step();
    if (w.violations.empty()) {
        quiet();
        checkAtRest();
    }
    m_daemon->shutdown();
    m_daemon.reset();
    m_disp.settle();
    return w.violations.empty();
}

} // namespace

int main(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        auto num = [&](const char* flag) -> std::optional<uint64_t> {
            if (std::strcmp(argv[i], flag) != 0 || i + 1 >= argc)
                return std::nullopt;
            return std::strtoull(argv[++i], nullptr, 10);
        };
        if (auto v = num("--seed"))
            o.seed = *v;
        else if (auto v2 = num("--schedules"))
            o.schedules = int(*v2);
        else if (auto v3 = num("--steps"))
            o.steps = int(*v3);
        else if (std::strcmp(argv[i], "--verbose") == 0)
            o.verbose = true;
        else if (std::strcmp(argv[i], "--list-failing") == 0)
            o.listFailing = true;
        else if (std::strcmp(argv[i], "--known") == 0 && i + 1 < argc)
            for (const QString& s : QString::fromLatin1(argv[++i]).split(',', Qt::SkipEmptyParts))
                o.known[s.section(':', 0, 0).toULongLong()] = s.section(':', 1).toStdString();
        else {
            std::fprintf(
                stderr,
                "usage: %s [--seed N] [--schedules N] [--steps N] [--verbose]\n"
                "       [--known S[:TEXT],...] [--list-failing]\n"
                "Runs N schedules with seeds N, N+1, ...; a failing seed replays alone "
                "with --seed.\n--known: seeds of open findings; each must still fail, its first "
                "violation starting with TEXT (else drop or update it), and nothing else may.\n"
                "--list-failing: every failing seed and its first violation, one line each "
                "(to re-derive --known after the world changed).\n",
                argv[0]);
            return 2;
        }
    }
    qputenv("QT_NO_GLIB", "1");
    FakeClock startClock;
    auto* dispatcher = new VirtualDispatcher(startClock);
    QCoreApplication::setEventDispatcher(dispatcher);
    QCoreApplication app(argc, argv);
    // The daemon's per-result log lines would drown the trace.
    QLoggingCategory::setFilterRules(o.verbose ? "" : "clocksync.*=false\ndefault.warning=false");
    QTemporaryDir dir;
    int failed = 0;
    int knownFailed = 0;
    long sets = 0;
    for (int i = 0; i < o.schedules; ++i) {
        const uint64_t seed = o.seed + uint64_t(i);
        dispatcher->fireOrphans();
        if (dispatcher->armedTimers() != 0)
            qFatal("simulation: a timer outlived its schedule and its receiver");
        FakeClock clock; // every schedule from the same start: reproducible alone
        dispatcher->setClock(clock);
        Schedule s(clock, *dispatcher, seed, dir.path());
        const bool ok = s.run(o.steps);
        sets += s.sets();
        if (o.listFailing) {
            if (!ok) {
                ++failed;
                std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed),
                            s.violations().front().what.c_str());
            }
            continue;
        }
        if (o.known.count(seed)) {
            if (ok) {
                ++failed;
                std::printf("seed %llu is listed as an open finding but passes: drop it from "
                            "--known\n",
                            static_cast<unsigned long long>(seed));
            } else if (const std::string& what = s.violations().front().what;
                       what.rfind(o.known.at(seed), 0) != 0) {
                ++failed;
                std::printf("seed %llu is listed as an open finding of '%s' but fails with: %s\n",
                            static_cast<unsigned long long>(seed), o.known.at(seed).c_str(),
                            what.c_str());
            } else {
                ++knownFailed;
                std::printf("open finding, seed %llu: %s\n", static_cast<unsigned long long>(seed),
                            what.c_str());
            }
            continue;
        }
        if (ok && !o.verbose)
            continue;
        const auto& t = s.trace();
        const std::size_t from = o.verbose || t.size() < 80 ? 0 : t.size() - 80;
        for (std::size_t k = from; k < t.size(); ++k)
            std::printf("%s\n", t[k].c_str());
        if (!ok) {
            ++failed;
            std::printf("FAILED seed %llu: %s\n  replay: %s --seed %llu --verbose\n",
                        static_cast<unsigned long long>(seed), s.violations().front().what.c_str(),
                        argv[0], static_cast<unsigned long long>(seed));
            if (failed >= 3)
                break;
        }
    }
    std::printf("%d schedule(s) from seed %llu, %d step(s) each: %d failed, %d open finding(s) "
                "as listed, %ld guest clock sets checked\n",
                o.schedules, static_cast<unsigned long long>(o.seed), o.steps, failed, knownFailed,
                sets);
    return failed ? 1 : 0;
}
