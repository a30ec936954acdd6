// SPDX-License-Identifier: Apache-2.0
// Domain tracker + scheduler with a fake backend: results, coalescing, cancel
// mid-sync, waiting for the agent (event and deadline), the concurrency bound
// under a burst, and reconcile. Waits are on signals/conditions with deadlines.
#include "domaintracker.h"
#include "fakes.h"
#include "rtcchange.h"

#include <QSignalSpy>
#include <QTest>

#include <set>

using namespace clocksync;
using namespace std::chrono_literals;

class TestTracker : public QObject
{
    Q_OBJECT

    struct Rig
    {
        FakeClock clock;
        FakeBackend backend{clock};
        Scheduler scheduler;
        DomainTracker tracker;
        QSignalSpy spy;
        explicit Rig(int concurrency = 4)
            : scheduler(backend, clock, concurrency), tracker(scheduler, clock),
              spy(&tracker, &DomainTracker::syncFinished)
        {
        }
        SyncResult result(int i) { return spy.at(i).at(0).value<SyncResult>(); }
        bool waitResults(int n)
        {
            while (spy.size() < n)
                if (!spy.wait(10000))
                    return false;
            return true;
        }
    };

private slots:
    void laterJobsRunAfterQueuedOnesLargestFirst()
    {
        // One worker, held busy; then refines (ranked) and a first set queue
        // up: the first set runs before any refine, the refines largest first.
        WorkerPool pool(1);
        std::mutex m;
        std::condition_variable cv;
        bool release = false;
        std::vector<std::string> order;
        auto note = [&](std::string what) {
            std::lock_guard l(m);
            order.push_back(std::move(what));
        };
        pool.submit([&] {
            std::unique_lock l(m);
            cv.wait(l, [&] { return release; });
        });
        pool.submitLater([&] { note("refine 1"); }, 1);
        pool.submitLater([&] { note("refine 5"); }, 5);
        pool.submitLater([&] { note("refine 3"); }, 3);
        pool.submit([&] { note("first set"); });
        QVERIFY(pool.hasQueued());
        {
            std::lock_guard l(m);
            release = true;
        }
        cv.notify_all();
        QVERIFY(pool.waitForDone(10000));
        QVERIFY(!pool.hasQueued());
        QCOMPARE(order,
                 (std::vector<std::string>{"first set", "refine 5", "refine 3", "refine 1"}));
    }

    void resumeIsSynced()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        SyncResult r = rig.result(0);
        QCOMPARE(r.outcome, Outcome::Synced);
        QCOMPARE(r.domain, std::string("vm1"));
        QCOMPARE(r.uuid, std::string("u1"));
        QCOMPARE(r.trigger, Trigger::Resumed);
        QCOMPARE(r.before->offsetNs, -5'000'000'000);
        auto st = rig.tracker.status();
        QCOMPARE(st.size(), std::size_t(1));
        QCOMPARE(st[0].state, DomainState::Idle);
        QVERIFY(st[0].last);
    }

    void triggersDuringSyncCoalesce()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.closeGate();
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        // Three more events while the first sync is in flight: one follow-up sync.
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        rig.tracker.trigger("u1", "vm1", Trigger::Request);
        rig.tracker.trigger("u1", "vm1", Trigger::PolicyChanged);
        QCOMPARE(rig.tracker.pendingCount(), 1);
        rig.backend.openGate();
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).trigger, Trigger::Resumed); // the first reason is kept
        QVERIFY(!rig.spy.wait(100));                       // and nothing more
        QCOMPARE(rig.backend.opened(), 2);
    }

    // A correcting trigger queued behind a measure-only drift check, or
    // coalesced into one waiting for the agent, must correct the guest.
    void correctingTriggerWinsOverDriftCheck()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.policy = parsePolicyXml("<policy watch-interval=\"60\"/>"); // watch-correct=no
        rig.backend.setDomain("u1", d);
        rig.backend.closeGate();
        rig.tracker.trigger("u1", "vm1", Trigger::DriftWatch); // measuring only
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        rig.tracker.trigger("u1", "vm1", Trigger::DriftWatch); // the next check queued
        rig.tracker.trigger("u1", "vm1", Trigger::Request);    // must take over
        rig.backend.openGate();
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(0).outcome, Outcome::Drifted);
        QCOMPARE(rig.result(1).trigger, Trigger::Request);
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);

        // Waiting for the agent: the same.
        Rig w;
        w.backend.setDomain("u2", d);
        w.tracker.trigger("u2", "vm2", Trigger::DriftWatch, /*waitForAgent=*/true);
        w.tracker.trigger("u2", "vm2", Trigger::HostClockStep);
        w.tracker.agentState("u2", "vm2", true);
        QVERIFY(w.waitResults(1));
        QCOMPARE(w.result(0).trigger, Trigger::HostClockStep);
        QCOMPARE(w.result(0).outcome, Outcome::Synced);
        QVERIFY(w.result(0).attempts > 0);
    }

    // A request that arrives while a sync is measuring is answered by a job
    // that starts after it (ticket), never by the earlier job's result.
    void requestGetsItsOwnJob()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.closeGate();
        const uint64_t first = rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        const uint64_t req = rig.tracker.trigger("u1", "vm1", Trigger::Request);
        QVERIFY(req > first);
        rig.backend.openGate();
        QVERIFY(rig.waitResults(2));
        QVERIFY(rig.result(0).generation < req); // the earlier job: not an answer
        QCOMPARE(rig.result(1).generation, req);
        QCOMPARE(rig.result(1).trigger, Trigger::Request);
        // Idle and waiting: the ticket is the next job's own generation.
        const uint64_t idle = rig.tracker.trigger("u1", "vm1", Trigger::Request);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).generation, idle);
    }

    // A request queued behind a sync that a pause cancels is answered too.
    void requestQueuedBehindCancelledSyncIsAnswered()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.closeGate();
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        const uint64_t req = rig.tracker.trigger("u1", "vm1", Trigger::Request);
        rig.tracker.cancel("u1", "domain paused");
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).generation, req);
        QCOMPARE(rig.result(0).outcome, Outcome::Cancelled);
        rig.backend.openGate();
        QVERIFY(rig.waitResults(2));
        QVERIFY(rig.result(1).generation < req);
        // The running job stops before its set, and says why: not "no longer
        // running" (a policy change cancels the same way, the domain runs on).
        QCOMPARE(rig.result(1).outcome, Outcome::Cancelled);
        QVERIFY2(rig.result(1).note.find("stopped before its next set") != std::string::npos,
                 rig.result(1).note.c_str());
    }

    // After the agent wait times out, what we knew of the agent is stale: the
    // next trigger tries the agent instead of waiting for a lost event.
    void agentStateIsNotStickyAfterDeadline()
    {
        Rig rig;
        rig.tracker.setAgentWait(50'000'000); // 50 ms
        rig.backend.setDomain("u1", {});
        rig.backend.setAgentError("u1", qga::makeError(qga::ErrorKind::AgentUnavailable, "gone"));
        rig.tracker.trigger("u1", "vm1", Trigger::Restored, true); // "connected" never comes
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Failed);
        rig.backend.setAgentError("u1", std::nullopt);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(rig.result(1).trigger, Trigger::Resumed);
    }

    // An agent that does not answer in time (libvirt: "not responding") is
    // connected: no "connected" event will come. It is retried on a timer, and
    // the guest ends synced once it answers -- no event, no other trigger.
    void agentTimeoutIsRetriedWithoutAnEvent()
    {
        Rig rig;
        rig.tracker.setAgentWait(10'000'000'000);
        rig.tracker.setFirstAgentRetry(20'000'000); // 20 ms, then 40, 80 ...
        rig.backend.setDomain("u1", {});
        rig.backend.setAgentError("u1", qga::makeError(qga::ErrorKind::Timeout, "not responding"));
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QTRY_VERIFY_WITH_TIMEOUT(rig.backend.opened() >= 2, 5000); // tried again by itself
        QCOMPARE(rig.spy.size(), 0);                               // not an outcome yet
        rig.backend.setAgentError("u1", std::nullopt);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
        QCOMPARE(rig.result(0).trigger, Trigger::Resumed);
    }

    // Past the deadline the failure is published, naming the real cause, and
    // the agent is still tried later (agent-wait x 1, 2, 4), not only at the
    // next trigger.
    void agentIsRetriedLateAfterTheDeadline()
    {
        Rig rig;
        rig.tracker.setAgentWait(40'000'000); // 40 ms
        rig.backend.setDomain("u1", {});
        rig.backend.setAgentError("u1", qga::makeError(qga::ErrorKind::Timeout, "not responding"));
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Failed);
        QCOMPARE(rig.result(0).error->kind, qga::ErrorKind::Timeout);
        QVERIFY2(rig.result(0).error->message.find("did not answer within") != std::string::npos &&
                     rig.result(0).error->message.find("not responding") != std::string::npos,
                 rig.result(0).error->message.c_str());
        rig.backend.setAgentError("u1", std::nullopt);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(rig.result(1).trigger, Trigger::Resumed);
    }

    // A set that was sent and never answered may still run, late, in the
    // agent, with the time it carried: such a domain is asked again past
    // the three late retries, until an answer measures where it is.
    void unansweredSetIsRetriedUntilAnswered()
    {
        Rig rig;
        rig.tracker.setAgentWait(20'000'000); // 20 ms
        FakeBackend::Domain d;
        d.offsetNs = 2'000'000'000;
        rig.backend.setDomain("u1", d);
        rig.backend.setSetError("u1", qga::makeError(qga::ErrorKind::Timeout, "no reply"));
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        // The first failure, then three late retries, then more: without the
        // rule the fifth result never comes.
        QVERIFY(rig.waitResults(6));
        for (int i = 0; i < 6; ++i) {
            QCOMPARE(rig.result(i).outcome, Outcome::Failed);
            QVERIFY(rig.result(i).attempts > 0);
        }
        // Answered at last: synced (within a retry or two: one may be in
        // flight with the old agent).
        rig.backend.setSetError("u1", std::nullopt);
        const int before = int(rig.spy.size());
        bool synced = false;
        for (int n = before + 1; n <= before + 3 && !synced; ++n) {
            QVERIFY(rig.waitResults(n));
            synced = rig.result(n - 1).outcome == Outcome::Synced;
        }
        QVERIFY(synced);
    }

    // Reconcile (after a reconnect, events may be lost) tries a waiting
    // domain's agent at once instead of waiting out the deadline.
    void reconcileRetriesAgentOfWaitingDomain()
    {
        Rig rig;
        rig.tracker.setAgentWait(60'000'000'000); // the whole test would time out
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Restored, true);
        QCOMPARE(rig.tracker.status()[0].state, DomainState::WaitingAgent);
        rig.tracker.reconcile({{"u1", "vm1"}});
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
    }

    // An undefined domain is forgotten: no status row, and defined again it
    // starts with a fresh delay model; a request waiting on it is answered.
    void undefinedDomainIsForgotten()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.tracker.trackedCount(), 1);
        rig.tracker.forget("u1");
        QCOMPARE(rig.tracker.trackedCount(), 0);
        QVERIFY(rig.tracker.status().empty());

        rig.backend.closeGate();
        const uint64_t t = rig.tracker.trigger("u1", "vm1", Trigger::Request);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        rig.tracker.forget("u1"); // undefined mid-sync
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Cancelled);
        QVERIFY(rig.result(1).generation >= t);
        rig.backend.openGate();
        QVERIFY(!rig.spy.wait(200)); // the orphaned job's result is dropped
        QCOMPARE(rig.tracker.trackedCount(), 0);
    }

    // No agent channel: skipped with the reason, never a failure.
    void noAgentChannelIsSkippedQuietly()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.facts.agentChannel = false;
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Skipped);
        QVERIFY(rig.result(0).note.find("no guest agent channel") != std::string::npos);
        QCOMPARE(rig.backend.opened(), 0);
    }

    // <clock offset='variable' adjustment='3600'>: the guest is kept at host
    // + 3600 s, not dragged to host UTC; offset='absolute' is left alone
    // unless the metadata sets a mode.
    void intendedClockOffsetsAreKept()
    {
        Rig rig;
        FakeBackend::Domain v;
        v.offsetNs = 3600'000'000'000 - 5'000'000'000; // paused 5 s
        v.facts.clock = DomainFacts::Clock::Variable;
        v.facts.adjustmentNs = 3600'000'000'000;
        rig.backend.setDomain("var", v);
        rig.tracker.trigger("var", "var", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
        QCOMPARE(rig.result(0).before->offsetNs, -5'000'000'000); // relative to the intent
        QVERIFY(rig.result(0).note.find("offset='variable'") != std::string::npos);

        FakeBackend::Domain a;
        a.facts.clock = DomainFacts::Clock::Absolute;
        rig.backend.setDomain("abs", a);
        rig.tracker.trigger("abs", "abs", Trigger::Resumed);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Skipped);
        a.policy = parsePolicyXml("<policy mode=\"host\"/>"); // the default: its own time
        rig.backend.setDomain("abs", a);
        rig.tracker.trigger("abs", "abs", Trigger::Resumed);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).outcome, Outcome::Skipped);
        a.policy = parsePolicyXml("<policy mode=\"host-utc\"/>"); // the explicit override
        rig.backend.setDomain("abs", a);
        rig.tracker.trigger("abs", "abs", Trigger::Resumed);
        QVERIFY(rig.waitResults(4));
        QCOMPARE(rig.result(3).outcome, Outcome::Synced);
    }

    // An explicit mode=host in the metadata (how an operator turns syncing
    // back on after mode=off) keeps the intended offset; a negative
    // adjustment is kept as a positive one is; host-utc drops it, by name.
    void explicitHostModeKeepsTheIntendedOffset()
    {
        Rig rig;
        FakeBackend::Domain v;
        v.offsetNs = 3600'000'000'000 - 3'000'000'000;
        v.facts.clock = DomainFacts::Clock::Variable;
        v.facts.adjustmentNs = 3600'000'000'000;
        v.policy = parsePolicyXml("<policy mode=\"host\"/>");
        rig.backend.setDomain("var", v);
        rig.tracker.trigger("var", "var", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).before->offsetNs, -3'000'000'000); // against host + 3600 s
        QVERIFY(rig.result(0).note.find("target host +3600.000 s") != std::string::npos);

        FakeBackend::Domain neg;
        neg.offsetNs = -7200'000'000'000 - 2'000'000'000;
        neg.facts.clock = DomainFacts::Clock::Variable;
        neg.facts.adjustmentNs = -7200'000'000'000;
        rig.backend.setDomain("neg", neg);
        rig.tracker.trigger("neg", "neg", Trigger::Resumed);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(rig.result(1).before->offsetNs, -2'000'000'000);
        QVERIFY(rig.result(1).note.find("target host -7200.000 s") != std::string::npos);

        v.policy = parsePolicyXml("<policy mode=\"host-utc\"/>");
        rig.backend.setDomain("var", v);
        rig.tracker.trigger("var", "var", Trigger::Resumed);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).before->offsetNs, 3597'000'000'000); // against host UTC
        QVERIFY(rig.result(2).note.find("target host") == std::string::npos);
    }

    // A pause while the job's agent does not answer: the job ends cancelled,
    // not failed (before: "failed", and a late retry armed for a paused guest).
    void pauseWhileTheAgentDoesNotAnswerIsACancel()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.agentError = qga::makeError(qga::ErrorKind::AgentUnavailable, "not connected");
        d.hang = true; // the job waits in openAgent until released
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, std::chrono::seconds(10)));
        rig.tracker.cancel("u1", "domain paused or stopped");
        rig.backend.release("u1");
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Cancelled);
        QVERIFY(!rig.tracker.busy("u1"));
        QCOMPARE(rig.backend.opened(), 1);
    }

    // mode=rtc verifies against the intended time too: a variable clock's
    // RTC carries its adjustment; an absolute clock has none to verify.
    void rtcModeAimsAtTheIntendedTime()
    {
        const DomainFacts var = *parseDomainFacts(
            "<domain><clock offset='variable' adjustment='3600' basis='utc'/></domain>");
        QCOMPARE(intendedTime(var, SyncMode::Rtc).shiftNs, 3600'000'000'000);
        const DomainFacts abs = *parseDomainFacts("<domain><clock offset='absolute'/></domain>");
        QVERIFY(intendedTime(abs, SyncMode::Rtc).leaveAlone);
    }

    // virsh define (or virt-manager's editor) on a shut-off domain sends
    // DEFINED_UPDATED: its policy is read (status shows it), but no agent is
    // asked and nothing reads as a failed or cancelled sync. Running, the same
    // change syncs.
    void policyChangeOfAStoppedDomainAsksNoAgent()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.running = false;
        rig.backend.setDomain("u1", d);
        rig.tracker.policyChanged("u1", "vm1");
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Skipped);
        QVERIFY(!rig.result(0).configProblem);
        QVERIFY2(rig.result(0).note.find("not running") != std::string::npos,
                 rig.result(0).note.c_str());
        QCOMPARE(rig.backend.opened(), 0);

        d.running = true;
        rig.backend.setDomain("u1", d);
        rig.tracker.policyChanged("u1", "vm1");
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(rig.backend.opened(), 1);
    }

    // Fail closed: metadata with a typo, metadata libvirt cannot return, or a
    // domain XML that cannot be read leave the guest alone -- skipped, with
    // the reason, marked as a config problem -- and never open its agent.
    void unreadablePolicyOrXmlLeavesTheGuestAlone()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.policy = parsePolicyXml("<policy mode=\"of\"/>");
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Skipped);
        QVERIFY(rig.result(0).configProblem);
        QVERIFY2(rig.result(0).note.find("invalid value 'of' for 'mode'") != std::string::npos,
                 rig.result(0).note.c_str());

        // libvirt cannot be asked (its connection failed): not the domain's
        // problem, nothing set, and tried again -- synced once it answers.
        // (Before, it was published as a config problem and never retried.)
        rig.tracker.setAgentWait(3'600'000'000'000);
        d.policy = {};
        d.policyError = qga::makeError(qga::ErrorKind::Transport, "cannot read metadata");
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QTRY_VERIFY(rig.tracker.busy("u1"));
        d.policyError.reset();
        rig.backend.setDomain("u1", d);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(rig.backend.opened(), 1);
        rig.backend.setDomain("u1", FakeBackend::Domain{}); // its guest right again

        d.policyError.reset();
        d.factsError = qga::makeError(qga::ErrorKind::Protocol, "domain XML does not parse");
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).outcome, Outcome::Skipped);
        QVERIFY(rig.result(2).note.find("cannot read its domain XML") != std::string::npos);
        QCOMPARE(rig.backend.opened(), 1); // the one sync above

        d.factsError.reset(); // fixed: synced at the next trigger
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(4));
        QCOMPARE(rig.result(3).outcome, Outcome::Synced);
        QVERIFY(!rig.result(3).configProblem);
    }

    // A request's own --samples/--attempts reach its job, and only its job.
    void requestTuningReachesItsJobOnly()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Request, false, RequestTuning{20, 0});
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).before->samples, 20);
        rig.tracker.trigger("u1", "vm1", Trigger::Request);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).before->samples, SyncPolicy{}.samples);
    }

    // A result belongs to the job that made it: undefine while a sync runs,
    // then an event that makes the entry again and starts a second job. The
    // first job's late result is dropped; it neither ends the second job nor
    // answers its trigger.
    void staleResultOfAForgottenEntryIsDropped()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.closeGate();
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, std::chrono::seconds(5)));
        rig.tracker.forget("u1"); // virsh undefine of the running guest
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Cancelled);
        const uint64_t ticket = rig.tracker.trigger("u1", "vm1", Trigger::RtcChanged);
        QVERIFY(rig.backend.waitForBlocked(2, std::chrono::seconds(5)));
        rig.backend.openGate();
        QVERIFY(rig.waitResults(2));
        QVERIFY(rig.scheduler.waitForDone(5000));
        QCoreApplication::sendPostedEvents();
        QCoreApplication::processEvents();
        QCOMPARE(rig.spy.size(), 2); // the forgotten job's result was not published
        QCOMPARE(rig.result(1).trigger, Trigger::RtcChanged);
        QCOMPARE(rig.result(1).generation, ticket);
        QCOMPARE(rig.tracker.status()[0].state, DomainState::Idle);
    }

    // Why a job does not sync at all, in the order the job checks it.
    void skipReasons()
    {
        const SyncPolicy p;
        const DomainFacts facts;
        QVERIFY(!skipReason(Trigger::Resumed, p, facts));
        QCOMPARE(*skipReason(Trigger::DriftWatch, p, facts),
                 std::string("policy: watch-interval=0"));
        QCOMPARE(*skipReason(Trigger::Booted, p, facts), std::string("policy: sync-on-boot=no"));
        SyncPolicy off;
        off.enabled = false;
        QCOMPARE(*skipReason(Trigger::Resumed, off, facts), std::string("policy: enabled=no"));
        off = {};
        off.mode = SyncMode::Off;
        QCOMPARE(*skipReason(Trigger::Resumed, off, facts), std::string("policy: mode=off"));
        SyncPolicy noRtc;
        noRtc.onRtcChange = false;
        QCOMPARE(*skipReason(Trigger::RtcChanged, noRtc, facts),
                 std::string("policy: on-rtc-change=no"));
        DomainFacts noChannel;
        noChannel.agentChannel = false;
        QVERIFY(skipReason(Trigger::Resumed, p, noChannel)->find("no guest agent") == 0);
        DomainFacts absolute;
        absolute.clock = DomainFacts::Clock::Absolute;
        QVERIFY(skipReason(Trigger::Resumed, p, absolute)); // mode=host: its own time
        SyncPolicy utc;
        utc.mode = SyncMode::HostUtc;
        QVERIFY(!skipReason(Trigger::Resumed, utc, absolute)); // the explicit override
    }

    void domainFactsFromXml()
    {
        const DomainFacts f = *parseDomainFacts(
            "<domain type='kvm'><clock offset='variable' adjustment='3600' basis='utc'/><devices>"
            "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0' "
            "state='connected'/></channel></devices></domain>");
        QVERIFY(!f.agentChannel);   // a spice channel is not an agent channel
        QVERIFY(!f.agentConnected); // ... nor is its state the agent's
        const DomainFacts connected = *parseDomainFacts(
            "<domain type='qemu'><devices><channel type='unix'><target type='virtio' "
            "name='org.qemu.guest_agent.0' state='disconnected'/></channel><channel "
            "type='spicevmc'><target type='virtio' name='com.redhat.spice.0' state='connected'/>"
            "</channel></devices></domain>");
        QCOMPARE(connected.agentConnected, std::optional<bool>(false));
        QCOMPARE(int(f.clock), int(DomainFacts::Clock::Variable));
        QCOMPARE(f.adjustmentNs, 3600'000'000'000);
        const DomainFacts g = *parseDomainFacts(
            "<domain type='qemu'><clock offset='localtime'/><devices><channel type='unix'>"
            "<target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>");
        QVERIFY(g.agentChannel);
        QCOMPARE(int(g.clock), int(DomainFacts::Clock::Utc)); // Windows: UTC inside
        QCOMPARE(
            int(parseDomainFacts("<domain><clock offset='absolute' start='0'/></domain>")->clock),
            int(DomainFacts::Clock::Absolute));
        QVERIFY(parseDomainFacts("<domain type='test'/>")->agentChannel); // no channel needed there
    }

    // What libvirt's clock offsets mean for the time a guest is aimed at, and
    // XML that is not understood is an error (the guest is left alone).
    void intendedTimeOfEveryClock()
    {
        // basis='localtime': the RTC runs in local time + N, the guest's
        // system clock at UTC + N -- the same rule as offset='localtime'.
        // libvirt's live XML says basis='utc' with N + the host's UTC offset;
        // with the inactive definition's basis, the offset comes out again.
        const DomainFacts local = *parseDomainFacts(
            "<domain><clock offset='variable' adjustment='60' basis='localtime'/></domain>", 3600);
        QCOMPARE(int(local.clock), int(DomainFacts::Clock::Variable));
        QCOMPARE(intendedTime(local, SyncMode::Host).shiftNs, 60'000'000'000);
        const DomainFacts localLive = *parseDomainFacts(
            "<domain><clock offset='variable' adjustment='3660' basis='utc'/></domain>", 3600);
        QCOMPARE(intendedTime(withConfiguredClock(localLive, local), SyncMode::Host).shiftNs,
                 60'000'000'000);
        const DomainFacts neg =
            *parseDomainFacts("<domain><clock offset='variable' adjustment='-7200'/></domain>");
        QCOMPARE(intendedTime(neg, SyncMode::Host).shiftNs, -7200'000'000'000);
        QCOMPARE(intendedTime(neg, SyncMode::HostUtc).shiftNs, 0);
        const DomainFacts tz = *parseDomainFacts(
            "<domain><clock offset='timezone' timezone='Europe/Paris'/></domain>");
        QCOMPARE(intendedTime(tz, SyncMode::Host).shiftNs, 0); // the system clock keeps UTC
        // libvirt's live adjustment follows the guest's RTC writes in whole
        // seconds (busybox's hwclock rounds): within 1 s of the configured
        // one it is rounding and the configured one is kept -- else every
        // set could walk the guest a second further; beyond, the guest
        // changed its clock and the live one is followed.
        DomainFacts live = *parseDomainFacts(
            "<domain><clock offset='variable' adjustment='3601' basis='utc'/></domain>");
        const DomainFacts configured = *parseDomainFacts(
            "<domain><clock offset='variable' adjustment='3600' basis='utc'/></domain>");
        QCOMPARE(intendedTime(withConfiguredClock(live, configured), SyncMode::Host).shiftNs,
                 3600'000'000'000);
        live.adjustmentNs = 3700'000'000'000;
        QCOMPARE(intendedTime(withConfiguredClock(live, configured), SyncMode::Host).shiftNs,
                 3700'000'000'000);
        QCOMPARE(intendedTime(live, SyncMode::Host).shiftNs, 3700'000'000'000); // none configured
        const DomainFacts abs = *parseDomainFacts("<domain><clock offset='absolute'/></domain>");
        QVERIFY(intendedTime(abs, SyncMode::Host).leaveAlone);
        QVERIFY(!intendedTime(abs, SyncMode::HostUtc).leaveAlone);
        for (const char* bad : {"<domain><devices>",                           // broken
                                "<domain><clock offset='sometime'/></domain>", // unknown
                                "<domain><clock offset='variable' basis='mars'/></domain>",
                                "<domain><clock offset='variable' adjustment='1e99'/></domain>",
                                "<domain><clock offset='variable' "
                                "adjustment='9223372036854775807'/></domain>", // would overflow
                                ""})
            QVERIFY2(!parseDomainFacts(bad), bad);
    }

    // RTC_CHANGE: our own sets are ignored (during a sync and a grace period
    // after one that set), someone else's start one sync, and a burst folds
    // into one deferred sync at the end of the minimum interval.
    void rtcChangeFilter()
    {
        using A = RtcChangeFilter::Action;
        const int64_t s = 1'000'000'000;
        RtcChangeFilter f(10 * s, 3 * s); // a 3 s grace, for the numbers below
        QCOMPARE(f.onEvent("u", 100 * s, /*ownSyncActive=*/true).action, A::Ignore);
        f.ownSyncEnded("u", 100 * s, /*setMade=*/true);
        QCOMPARE(f.onEvent("u", 102 * s, false).action, A::Ignore);  // our hwclock -w, late
        QCOMPARE(f.onEvent("u", 104 * s, false).action, A::SyncNow); // someone else's
        const auto burst = f.onEvent("u", 105 * s, false);
        QCOMPARE(burst.action, A::Defer);
        QCOMPARE(burst.dueNs, 114 * s);
        QCOMPARE(f.onEvent("u", 106 * s, false).action, A::Ignore); // folded in
        QCOMPARE(f.onEvent("u", 107 * s, false).action, A::Ignore);
        QVERIFY(f.fireDeferred("u", 114 * s));
        QVERIFY(!f.fireDeferred("u", 114 * s)); // once
        QCOMPARE(f.onEvent("u", 125 * s, false).action, A::SyncNow);
        f.ownSyncEnded("v", 125 * s, /*setMade=*/false); // measured only: no RTC write of ours
        QCOMPARE(f.onEvent("v", 125 * s, false).action, A::SyncNow);
        f.onEvent("v", 126 * s, false); // deferred
        f.forget("v");                  // undefined meanwhile
        QVERIFY(!f.fireDeferred("v", 135 * s));
    }

    // Which RTC offsets are ours (OwnSetLedger): a set's own write and its
    // whole-second rounding; one that landed late, as far back as it was
    // late; none for a set the agent never got. The live value answers to
    // our latest set that ran, an event to any kept.
    void ownSetLedger()
    {
        using Seen = OwnSetLedger::Seen;
        using Reply = OwnSetLedger::Reply;
        const int64_t s = 1'000'000'000;
        const int64_t t0 = 1'700'000'000 * s;
        OwnSetLedger l;
        QVERIFY(!l.explains("u", 3600 * s, t0, Seen::Reported)); // nothing sent yet
        const uint64_t a = l.sent("u", t0, 3600 * s, 0);
        QVERIFY(l.inFlight("u"));
        l.returned("u", a, t0 + s / 100, Reply::Ran);
        QVERIFY(!l.inFlight("u"));
        for (int64_t o : {3599, 3600, 3601})
            QVERIFY2(l.explains("u", o * s, t0 + 600 * s, Seen::Now),
                     qPrintable(QString::number(o)));
        for (int64_t o : {3598, 3603, -3600, 0})
            QVERIFY2(!l.explains("u", o * s, t0 + 600 * s, Seen::Now),
                     qPrintable(QString::number(o)));
        // basis='localtime' (RTC one hour ahead): the RTC offset carries it.
        const uint64_t b = l.sent("w", t0, 3600 * s, 3600 * s);
        l.returned("w", b, t0, Reply::Ran);
        QVERIFY(l.explains("w", 7200 * s, t0, Seen::Now));
        QVERIFY(!l.explains("w", 3600 * s, t0, Seen::Now));

        // Sent, the guest paused under the call, timed out: it may land any
        // time later, as far behind as it is late -- and no earlier.
        const uint64_t c = l.sent("v", t0, 3600 * s, 0);
        l.returned("v", c, t0 + 30 * s, Reply::MayLandLate);
        QVERIFY(l.explains("v", 3092 * s, t0 + 508 * s, Seen::Reported));
        QVERIFY(!l.explains("v", 3092 * s, t0 + 100 * s, Seen::Reported));
        QVERIFY(!l.explains("v", 3700 * s, t0 + 508 * s, Seen::Reported));
        // A later set answered: the late one landed before it, or never.
        const uint64_t d = l.sent("v", t0 + 510 * s, -7200 * s, 0);
        l.returned("v", d, t0 + 510 * s, Reply::Ran);
        QVERIFY(l.explains("v", 3092 * s, t0 + 900 * s, Seen::Reported));  // its event, late
        QVERIFY(!l.explains("v", 3000 * s, t0 + 900 * s, Seen::Reported)); // window closed
        // The live value is the later set's now: the earlier one's is not ours.
        QVERIFY(!l.explains("v", 3092 * s, t0 + 900 * s, Seen::Now));
        QVERIFY(l.explains("v", -7200 * s, t0 + 900 * s, Seen::Now));

        // Someone else's write followed since: the RTC holds none of ours,
        // even if the guest later comes back to a value one of them left.
        l.overwritten("v");
        QVERIFY(!l.explains("v", -7200 * s, t0 + 900 * s, Seen::Now));
        QVERIFY(l.explains("v", -7200 * s, t0 + 900 * s, Seen::Reported)); // its event, late
        const uint64_t f = l.sent("v", t0 + 950 * s, 60 * s, 0);
        l.returned("v", f, t0 + 950 * s, Reply::Ran);
        QVERIFY(l.explains("v", 60 * s, t0 + 950 * s, Seen::Now)); // a set after it is

        // Timed out, then the agent answered a read: it has landed by then
        // (qemu-ga runs commands in order), not open for ever.
        const uint64_t g = l.sent("y", t0, 3600 * s, 0);
        l.returned("y", g, t0 + 30 * s, Reply::MayLandLate);
        l.settled("y", t0 + 31 * s);
        QVERIFY(l.explains("y", 3570 * s, t0 + 9000 * s, Seen::Now));
        QVERIFY(!l.explains("y", 3000 * s, t0 + 9000 * s, Seen::Now));

        // The agent was not connected: nothing was sent, nothing will land.
        const uint64_t e = l.sent("x", t0, 60 * s, 0);
        l.returned("x", e, t0, Reply::NotSent);
        QVERIFY(!l.explains("x", 60 * s, t0, Seen::Reported));
        QVERIFY(!l.inFlight("x"));
        l.forget("u");
        QVERIFY(!l.explains("u", 3600 * s, t0, Seen::Reported));
    }

    void rtcChangedRespectsPolicy()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.policy = parsePolicyXml("<policy on-rtc-change=\"no\"/>");
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::RtcChanged);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Skipped);
        QCOMPARE(rig.result(0).note, std::string("policy: on-rtc-change=no"));
        QCOMPARE(rig.backend.opened(), 0);
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::RtcChanged);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        QCOMPARE(triggerName(rig.result(1).trigger), std::string_view("rtc-changed"));
    }

    void pauseMidSyncCancelsBeforeSet()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.closeGate();
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        rig.tracker.cancel("u1", "paused");
        rig.backend.openGate();
        QVERIFY(rig.waitResults(1));
        SyncResult r = rig.result(0);
        QCOMPARE(r.outcome, Outcome::Cancelled);
        QCOMPARE(r.attempts, 0); // nothing was set
    }

    void stoppedDomainIsNeverSet()
    {
        Rig rig;
        FakeBackend::Domain d;
        d.running = false; // stopped between the event and the job
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Cancelled);
        QCOMPARE(rig.result(0).attempts, 0);
    }

    void restoreWaitsForAgentConnected()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Restored, /*waitForAgent=*/true);
        // libvirt follows a restore with "resumed from snapshot": one sync, labelled restored.
        rig.tracker.trigger("u1", "vm1", Trigger::SnapshotReverted);
        QCOMPARE(rig.tracker.status()[0].state, DomainState::WaitingAgent);
        QCOMPARE(rig.backend.opened(), 0); // nothing runs before the agent is there
        rig.tracker.agentState("u1", "vm1", true);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
        QCOMPARE(rig.result(0).trigger, Trigger::Restored);
        QVERIFY(!rig.spy.wait(100)); // exactly one sync
        QCOMPARE(rig.backend.opened(), 1);
    }

    void agentUnavailableWaitsThenSyncs()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.backend.setAgentError(
            "u1", qga::makeError(qga::ErrorKind::AgentUnavailable, "not connected"));
        rig.tracker.trigger("u1", "vm1", Trigger::Resumed);
        QTRY_COMPARE_WITH_TIMEOUT(rig.tracker.status()[0].state, DomainState::WaitingAgent, 5000);
        QCOMPARE(rig.spy.size(), 0); // not an outcome yet
        rig.backend.setAgentError("u1", std::nullopt);
        rig.tracker.agentState("u1", "vm1", true);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
    }

    void agentWaitDeadlineExpires()
    {
        Rig rig;
        rig.tracker.setAgentWait(50'000'000); // 50 ms
        rig.backend.setDomain("u1", {});
        rig.backend.setAgentError("u1", qga::makeError(qga::ErrorKind::AgentUnavailable, "gone"));
        rig.tracker.trigger("u1", "vm1", Trigger::Restored, true);
        QVERIFY(rig.waitResults(1));
        SyncResult r = rig.result(0);
        QCOMPARE(r.outcome, Outcome::Failed);
        QCOMPARE(r.error->kind, qga::ErrorKind::AgentUnavailable);
        QVERIFY(r.error->message.find("did not connect") != std::string::npos);
        QVERIFY(rig.backend.opened() >= 1); // tried within the wait, not only waited
        // A late "connected" no longer starts anything by itself.
        rig.tracker.agentState("u1", "vm1", true);
        QCOMPARE(rig.tracker.pendingCount(), 0);
    }

    void pauseWhileWaitingForAgentCancels()
    {
        Rig rig;
        rig.backend.setDomain("u1", {});
        rig.tracker.trigger("u1", "vm1", Trigger::Restored, true);
        rig.tracker.cancel("u1", "paused");
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Cancelled);
        rig.tracker.agentState("u1", "vm1", true);
        QCOMPARE(rig.tracker.pendingCount(), 0);
        QCOMPARE(rig.backend.opened(), 0);
    }

    void burstRespectsConcurrencyAndOrder()
    {
        Rig rig(4);
        rig.clock.perThread = true;
        // Refines at once: a refine waiting for the gate sleeps on the fake
        // clock, where its window passes in no real time while the others
        // are still in phase 1 (the gate and the yield are tst_syncengine's).
        SyncPolicy p;
        p.refineWindowNs = 0;
        rig.tracker.setDefaults(p);
        rig.backend.recordOrder = true;
        rig.backend.closeGate();
        for (int i = 0; i < 50; ++i) {
            const std::string u = "u" + std::to_string(i);
            rig.backend.setDomain(u, {});
            rig.tracker.trigger(u, "vm" + std::to_string(i), Trigger::Resumed);
        }
        QVERIFY(rig.backend.waitForBlocked(4, 5s));
        QVERIFY(!rig.backend.waitForBlocked(5, 200ms)); // a fifth never starts
        QCOMPARE(rig.scheduler.running(), 4);
        const auto first = rig.backend.order();
        QCOMPARE(std::set<std::string>(first.begin(), first.end()),
                 (std::set<std::string>{"u0", "u1", "u2", "u3"}));
        rig.backend.openGate();
        QVERIFY(rig.waitResults(50));
        QCOMPARE(rig.scheduler.peakRunning(), 4);
        int synced = 0;
        for (int i = 0; i < 50; ++i)
            synced += rig.result(i).outcome == Outcome::Synced;
        QCOMPARE(synced, 50);
        // Served in trigger order: u49 was among the last to start.
        const auto all = rig.backend.order();
        QVERIFY(std::find(all.end() - 4, all.end(), "u49") != all.end());
    }

    void reconcileChecksEveryRunningDomain()
    {
        // One worker: the jobs share the fake clock, and two interleaved
        // ones move it under each other's measurement (a fresh-machine run
        // once read 'a' approximate, not synced, so).
        Rig rig(1);
        rig.backend.setDomain("a", {});
        FakeBackend::Domain inSync;
        inSync.offsetNs = 100'000;
        rig.backend.setDomain("b", inSync);
        rig.backend.setDomain("gone", {});
        rig.tracker.trigger("gone", "gone", Trigger::Restored,
                            true); // waiting when libvirt dropped
        rig.tracker.reconcile({{"a", "A"}, {"b", "B"}});
        QVERIFY(rig.waitResults(3));
        std::map<std::string, SyncResult> byUuid;
        for (int i = 0; i < 3; ++i)
            byUuid[rig.result(i).uuid] = rig.result(i);
        QCOMPARE(byUuid["a"].outcome, Outcome::Synced);
        QCOMPARE(byUuid["a"].trigger, Trigger::Reconcile);
        QCOMPARE(byUuid["b"].outcome, Outcome::InSync);
        QCOMPARE(byUuid["gone"].outcome, Outcome::Cancelled);
    }

    void driftWatchMeasuresOrCorrects()
    {
        Rig rig;
        QSignalSpy policies(&rig.tracker, &DomainTracker::policySeen);
        FakeBackend::Domain d;
        d.policy = parsePolicyXml("<policy watch-interval=\"60\"/>");
        d.offsetNs = -3'000'000; // drifted 3 ms
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::DriftWatch);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).outcome, Outcome::Drifted); // measured, not corrected
        QCOMPARE(rig.result(0).attempts, 0);
        QCOMPARE(policies.size(), 1);
        QCOMPARE(policies.at(0).at(2).value<SyncPolicy>().watchIntervalSeconds, 60);
        d.policy = parsePolicyXml("<policy watch-interval=\"60\" watch-correct=\"yes\"/>");
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::DriftWatch);
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).outcome, Outcome::Synced);
        d.policy = {};
        rig.backend.setDomain("u1", d);
        rig.tracker.trigger("u1", "vm1", Trigger::DriftWatch);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).outcome, Outcome::Skipped); // watch off for this domain
    }

    void hungAgentDoesNotDelayOthers()
    {
        Rig rig(2);
        FakeBackend::Domain stuck;
        stuck.hang = true; // an agent that does not answer (until released)
        rig.backend.setDomain("stuck", stuck);
        rig.backend.setDomain("fine", {});
        rig.tracker.trigger("stuck", "stuck", Trigger::Resumed);
        QVERIFY(rig.backend.waitForBlocked(1, 5s));
        rig.tracker.trigger("fine", "fine", Trigger::Resumed);
        QVERIFY(rig.waitResults(1));
        QCOMPARE(rig.result(0).domain, std::string("fine")); // served while the other hangs
        QCOMPARE(rig.result(0).outcome, Outcome::Synced);
        rig.backend.release("stuck");
        QVERIFY(rig.waitResults(2));
        QCOMPARE(rig.result(1).domain, std::string("stuck"));
    }

    void policyFromMetadata()
    {
        Rig rig;
        FakeBackend::Domain off;
        off.policy = parsePolicyXml("<policy mode=\"off\"/>");
        rig.backend.setDomain("off", off);
        rig.backend.setDomain("boot", {});
        rig.tracker.trigger("off", "off", Trigger::Resumed);
        rig.tracker.trigger("boot", "boot", Trigger::Booted);
        QVERIFY(rig.waitResults(2));
        for (int i = 0; i < 2; ++i) {
            QCOMPARE(rig.result(i).outcome, Outcome::Skipped);
            QVERIFY(rig.result(i).note.find("policy") != std::string::npos);
        }
        QCOMPARE(rig.backend.opened(), 0);
        // Changed live: the next trigger uses the new policy.
        rig.backend.setPolicy("off", parsePolicyXml("<policy mode=\"host\"/>"));
        rig.tracker.trigger("off", "off", Trigger::PolicyChanged);
        QVERIFY(rig.waitResults(3));
        QCOMPARE(rig.result(2).outcome, Outcome::Synced);
    }
};

QTEST_GUILESS_MAIN(TestTracker)
#include "tst_tracker.moc"
