// SPDX-License-Identifier: Apache-2.0
// Sync engine.
#include "syncengine.h"

#include <QLoggingCategory>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <variant>

Q_LOGGING_CATEGORY(lcEngine, "clocksync.engine", QtInfoMsg)

namespace clocksync {

using qga::ErrorKind;
using qga::Expected;

namespace {

bool transient(ErrorKind k)
{
    return k == ErrorKind::Timeout || k == ErrorKind::Transport;
}

// qemu-ga sets the system clock, then writes the RTC with hwclock -w: what
// fails in that second step comes after the clock moved. Its words (the
// agent's own, never translated; QEMU 2.x to 10.x): "hwclock failed to set
// hardware clock to system time" (before 9.1), "child process has failed to
// set hardware clock to system time: ..." (since), "child process has
// terminated abnormally", "failed to create child process", "failed to wait
// for child". Newer agents no longer check for hwclock before the set: a
// guest without it (Debian >= 12 without util-linux-extra) fails so on
// every set. Refusals before the set ("'/sbin/hwclock' is not executable",
// "Invalid time", "Failed to set time to guest", a disabled command) moved
// nothing: errors like any other.
bool setLandedThenFailed(const qga::Error& e)
{
    if (e.kind != ErrorKind::AgentError)
        return false;
    for (const char* after :
         {"set hardware clock to system time", "child process has terminated abnormally",
          "failed to create child process", "failed to wait for child"})
        if (e.message.find(after) != std::string::npos)
            return true;
    return false;
}

// What the result says of a set that moved the clock but not the RTC.
std::string rtcNotWritten(const std::string& message)
{
    const bool missing = message.find("No such file") != std::string::npos ||
                         message.find("failed to execute") != std::string::npos;
    return "the guest's RTC was not written: " + message +
           (missing ? " -- install hwclock in the guest (Debian: util-linux-extra)"
                    : " -- the guest's hwclock failed");
}

// Phase 2's pauses between checks for a quiet path: short at first (a lone
// guest's path calms within milliseconds), then longer (a storm takes a
// while), never so long that the window is overslept.
constexpr int64_t kFirstQuietPauseNs = 5'000'000;
constexpr int64_t kMaxQuietPauseNs = 160'000'000;

// How long after a set a quiet re-measure still shows where that set landed
// (a TCG guest drifts up to ~15 us/s against the host).
constexpr int64_t kLearnAfterSetNs = 1'000'000'000;

} // namespace

// One sync's I/O, around the decisions above. Each step returns a finished
// result when the sync ends there, nullopt to go on.
class SyncRun
{
public:
    SyncRun(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
            DelayModel& delay)
        : m_agent(agent), m_clock(clock), m_req(req), m_policy(req.policy), m_delay(delay),
          m_start(clock.monotonicNs()), m_rtc(req.policy.mode == SyncMode::Rtc)
    {
        m_result.trigger = req.trigger;
        m_result.transport = agent.transport();
        m_result.mode = req.policy.mode;
    }

    ~SyncRun()
    {
        endPhase1();
        leaveGate();
    }

    // docs/design.md §6: measure; leave a guest within its tolerance
    // alone; set host now + d; verify; re-correct until the verify supports
    // an outcome (verdict) or shouldStop says the rounds are over. Once the
    // guest is within tolerance (phase 1 done), every further set waits for
    // a quiet path (settle). Nullopt: the caller runs refine() later.
    std::optional<SyncResult> begin()
    {
        if (!m_policy.active())
            return finish(Outcome::Skipped, "policy: mode=off");
        if (m_req.gate) {
            m_req.gate->phase1Started();
            m_inPhase1 = true;
        }
        Expected<Measurement> m = measureNow();
        if (!m)
            return fail(m.error());
        qCDebug(lcEngine, "started %.1f ms after the trigger, measured in %.1f ms (%d samples)",
                (m_start - triggerNs()) / 1e6, (m_clock.monotonicNs() - m_start) / 1e6, m->samples);
        m_delay.noteRtt(m->rttNs);
        m_result.before = m_last = *m;
        noteStep(*m);
        if (std::optional<SyncStop> stop = beforeSetting(m_policy, m_req.trigger, *m, m_lim)) {
            if (stop->outcome == Outcome::InSync) {
                m_result.after = *m;
                noteCoarse();
            }
            return finish(stop->outcome, stop->note);
        }
        return rounds();
    }

    // Nullopt: it yielded again (a first set waits for a worker).
    std::optional<SyncResult> refine()
    {
        m_deferredOnce = true; // resumed: the one deferral to first sets is spent
        return rounds();
    }

    int64_t pendingOffsetNs() const { return std::llabs(m_last.offsetNs); }

private:
    // What settle() decided when the sync goes on: set now, or give the
    // worker back (refine() resumes).
    enum class Next { Set, Yield };

    std::optional<SyncResult> rounds()
    {
        while (!shouldStop(m_sets + 1, m_policy.attempts, m_result.after, m_lim)) {
            if (refining()) {
                // Other guests' first sets come before this refine, once.
                if (!m_deferredOnce && m_req.othersWaiting && m_req.othersWaiting()) {
                    m_deferredOnce = true;
                    return std::nullopt;
                }
                std::variant<SyncResult, Next> settled = settle();
                if (SyncResult* done = std::get_if<SyncResult>(&settled))
                    return std::move(*done);
                if (std::get<Next>(settled) == Next::Yield)
                    return std::nullopt;
            }
            std::optional<SyncResult> done = round(m_sets + 1);
            leaveGate(); // held for one set and its verify
            if (done)
                return done;
        }
        return outOfAttempts();
    }

    void endPhase1()
    {
        if (m_inPhase1)
            m_req.gate->phase1Ended();
        m_inPhase1 = false;
    }

    bool enterGate()
    {
        if (!m_req.gate || m_inGate)
            return true;
        m_inGate = m_req.gate->tryEnter();
        return m_inGate;
    }

    void leaveGate()
    {
        if (m_inGate)
            m_req.gate->leave();
        m_inGate = false;
    }

    // Phase 2: the guest was verified within tolerance and the last reading is.
    bool refining() const
    {
        return m_result.coarseLatencyNs > 0 && !m_rtc && inTolerance(m_last, m_lim);
    }

    // Phase 2 sets only alone and from a quiet measurement: while the host
    // is busy a set lands wherever the load puts it, and a verify says
    // little. Waits (growing pauses) until the refine gate is free -- no
    // guest in phase 1, no other refine -- then re-measures: outside the
    // tolerance again, or quiet and worth a set, it sets (gate held until
    // the verify); quiet and done, it ends; not quiet even alone, it waits
    // on; the gate taken while first sets wait for a worker, it yields. The
    // refine window bounds it all.
    std::variant<SyncResult, Next> settle()
    {
        if (m_policy.refineWindowNs <= 0)
            return Next::Set; // refine at once (no phase 2)
        const int64_t deadline = m_coarseMonoNs + m_policy.refineWindowNs;
        for (int64_t pause = kFirstQuietPauseNs;; pause = std::min(2 * pause, kMaxQuietPauseNs)) {
            if (std::optional<SyncResult> gone = confirmRunning())
                return std::move(*gone);
            if (m_clock.monotonicNs() > deadline) // also after yielding the worker
                return windowOver();
            if (enterGate()) {
                Expected<Measurement> v = measureNow();
                if (!v)
                    return fail(v.error());
                m_delay.noteRtt(v->rttNs);
                noteStep(*v);
                learnFromRemeasure(*v);
                m_result.after = m_last = *v;
                ++m_result.remeasures;
                if (!inTolerance(*v, m_lim))
                    return Next::Set; // left its tolerance: set at once
                if (quietPath(*v, m_delay)) {
                    std::string note;
                    if (std::optional<Outcome> o =
                            verdict(*v, m_lim, m_rtc, stopJitterNs(m_delay), note))
                        return finish(*o, note);
                    return Next::Set; // quiet, alone, and worth a set
                }
                leaveGate();
            } else if (m_req.othersWaiting && m_req.othersWaiting()) {
                // Waiting for the gate would hold a worker that a first set needs.
                return Next::Yield;
            }
            if (m_clock.monotonicNs() + pause > deadline)
                return windowOver();
            m_clock.sleepNs(pause);
        }
    }

    SyncResult windowOver()
    {
        return finish(Outcome::Approximate,
                      "the path was not quiet within the refine window (round trip " +
                          formatOffset(m_last.rttNs).substr(1) + ", floor " +
                          formatOffset(m_delay.bestRttNs).substr(1) + ")");
    }

    std::optional<SyncResult> round(int attempt)
    {
        // Decide on the time only after the last confirmation that the domain runs.
        if (std::optional<SyncResult> gone = confirmRunning())
            return gone;
        const int64_t d = m_rtc ? 0 : m_delay.estimate(m_last.rttNs);
        m_setFromQuiet = quietPath(m_last, m_delay);
        m_unlearned.reset(); // a re-measure after this set shows this set only
        const int64_t setStart = m_clock.monotonicNs();
        const Expected<void> set = setOnce(d);
        const int64_t setCost = m_clock.monotonicNs() - setStart;
        qCDebug(lcEngine, "attempt %d: set returned after %.1f ms (%.1f ms after the start)",
                attempt, setCost / 1e6, (setStart - m_start) / 1e6);
        m_sets = m_result.attempts = attempt;
        m_result.delayEstimateNs = d;
        // The clock moved, its RTC did not: measured and refined as any set
        // (the verify decides, not the reply); the result says what the
        // guest lacks.
        const bool landedThenFailed = !set && !m_rtc && setLandedThenFailed(set.error());
        if (landedThenFailed)
            m_rtcWriteFailed = set.error().message;
        if (!set && !landedThenFailed) {
            const qga::Error& err = set.error();
            if (!transient(err.kind) || attempt >= 2 * m_policy.attempts)
                return fail(err);
            // It may have landed, late: measure where the guest is now (a set
            // is never assumed), and learn nothing from it.
            m_lastSetError = err;
            m_setFromQuiet = false;
            Expected<Measurement> v = measureNow();
            if (!v)
                return fail(v.error());
            return verified(attempt, d, *v);
        }
        if (!m_rtc)
            m_delay.noteSetCost(setCost);
        m_lastSetError.reset(); // recovered: no longer the cause of anything
        Expected<Measurement> v = measureNow();
        if (!v)
            return fail(v.error());
        return verified(attempt, d, *v);
    }

    std::optional<SyncResult> confirmRunning()
    {
        // Stopped by the tracker: libvirt need not be asked.
        const bool told = m_req.stoppedByTracker && m_req.stoppedByTracker();
        Expected<bool> up = told                 ? Expected<bool>(false)
                            : m_req.stillRunning ? m_req.stillRunning()
                                                 : Expected<bool>(true);
        if (!up) // cannot tell: report what failed first
            return fail(m_lastSetError ? *m_lastSetError : up.error());
        if (*up)
            return std::nullopt;
        const char* const toldWhy = "stopped before its next set (a pause, a stop, the guest's "
                                    "own RTC change, or a change of its policy or the defaults)";
        if (m_result.coarseLatencyNs > 0 && m_result.after && inTolerance(*m_result.after, m_lim))
            return finish(Outcome::Approximate,
                          told ? std::string(toldWhy) + ", during the refine, within tolerance"
                               : "the domain stopped running during the refine, within tolerance");
        return finish(Outcome::Cancelled, told ? toldWhy : "domain no longer running");
    }

    // The set, or the RTC where the hypervisor cannot set an explicit time.
    Expected<void> setOnce(int64_t d)
    {
        if (m_rtc)
            return m_agent.setTimeFromRtc();
        // The host clock is read right before the call: d covers the rest.
        Expected<void> set = m_agent.setTime(nextSetTime(m_clock.realtimeNs(), d));
        if (set || set.error().kind != ErrorKind::Unsupported)
            return set;
        m_rtc = true;
        m_result.mode = SyncMode::Rtc;
        m_lim = effectiveLimits(m_policy, m_rtc, m_delay.clockStepNs);
        return m_agent.setTimeFromRtc();
    }

    // The limits follow the coarsest step the clock has shown, in this sync
    // or an earlier one: a tick is never chased, nor claimed finer than it is.
    void noteStep(const Measurement& m)
    {
        m_delay.clockStepNs = std::max(m_delay.clockStepNs, m.granularityNs);
        m_lim = effectiveLimits(m_policy, m_rtc, m_delay.clockStepNs);
    }

    std::optional<SyncResult> verified(int attempt, int64_t d, const Measurement& v)
    {
        m_delay.noteRtt(v.rttNs);
        noteStep(v);
        m_result.after = v;
        qCDebug(lcEngine,
                "attempt %d: delay estimate %lld us, verified %+lld us (RTT %lld us, %d samples%s)",
                attempt, static_cast<long long>(d / 1000),
                static_cast<long long>(v.offsetNs / 1000), static_cast<long long>(v.rttNs / 1000),
                v.samples, quietPath(v, m_delay) ? "" : ", path busy");
        // We asked to move the clock by more than the tolerance: reading the
        // very same nanosecond afterwards means it neither moved nor ticked
        // (a coarse clock may show the same millisecond: not evidence).
        if (v.firstGuestNs == m_last.lastGuestNs && m_lim.granularityNs <= 1)
            return fail(qga::makeError(ErrorKind::BadClock,
                                       "guest clock does not advance (it shows the same time "
                                       "before and after the set)"));
        // Learn only from a set made on a quiet path and verified on one. A
        // busy verify teaches nothing, but the quiet re-measure that follows it
        // (settle) still shows where this set landed: it learns then.
        if (!m_rtc && m_setFromQuiet) {
            if (shouldLearn(v, m_delay, m_lim))
                m_delay.learn(m_last.rttNs, d, v.offsetNs);
            else if (!quietPath(v, m_delay))
                m_unlearned = UnlearnedSet{m_last.rttNs, d, m_clock.monotonicNs()};
        }
        m_last = v;
        if (inTolerance(v, m_lim))
            noteCoarse();
        // A busy verify within tolerance says little more: settle() re-measures
        // when the path is quiet, and decides from that.
        if (!m_rtc && m_policy.refineWindowNs > 0 && inTolerance(v, m_lim) &&
            !quietPath(v, m_delay))
            return std::nullopt;
        std::string note;
        if (std::optional<Outcome> o = verdict(v, m_lim, m_rtc, stopJitterNs(m_delay), note))
            return finish(*o, note);
        if (m_rtc) // the RTC gives what it gives: another read of it changes nothing
            return fail(qga::makeError(ErrorKind::BadClock, "guest re-read its RTC but is still " +
                                                                formatOffset(v.offsetNs) + " off"));
        return std::nullopt;
    }

    // The first quiet re-measure after a set whose verify was busy, soon
    // enough after it: the set's observation (never when another set came between).
    void learnFromRemeasure(const Measurement& v)
    {
        if (!m_unlearned || !quietPath(v, m_delay))
            return; // busy again: a later quiet re-measure may still teach it
        if (m_clock.monotonicNs() - m_unlearned->atNs <= kLearnAfterSetNs &&
            shouldLearn(v, m_delay, m_lim))
            m_delay.learn(m_unlearned->basisRttNs, m_unlearned->estimateNs, v.offsetNs);
        m_unlearned.reset();
    }

    // Latencies count from the trigger; a request without one, from the start.
    int64_t triggerNs() const { return m_req.triggerMonoNs ? m_req.triggerMonoNs : m_start; }

    void noteCoarse()
    {
        endPhase1();
        if (m_result.coarseLatencyNs > 0)
            return;
        m_coarseMonoNs = m_clock.monotonicNs();
        m_result.coarseLatencyNs = std::max<int64_t>(1, m_coarseMonoNs - triggerNs());
    }

    // One measurement of the guest, as every phase takes it.
    Expected<Measurement> measureNow()
    {
        return measure(m_agent, samplesFor(m_policy, m_delay), m_delay.bestRttNs, &m_clock);
    }

    SyncResult outOfAttempts()
    {
        if (m_result.after && inTolerance(*m_result.after, m_lim))
            return finish(Outcome::Approximate,
                          m_lastSetError // finish() says so
                              ? std::string()
                              : "out of attempts after " + std::to_string(m_result.attempts) +
                                    " sets, the target is " +
                                    formatOffset(m_lim.targetNs).substr(1));
        return fail(qga::makeError(ErrorKind::BadClock,
                                   "residual " +
                                       formatOffset(m_result.after ? m_result.after->offsetNs : 0) +
                                       " still outside tolerance after " +
                                       std::to_string(m_result.attempts) + " attempts"));
    }

    SyncResult finish(Outcome o, std::string note = {})
    {
        endPhase1();
        leaveGate();
        m_result.outcome = o;
        if (!note.empty())
            m_result.note = std::move(note);
        // Short of the target after a set that failed (it landed late, or
        // not at all): the failure is part of why, on every path.
        if (o == Outcome::Approximate && m_lastSetError)
            m_result.note += std::string(m_result.note.empty() ? "" : "; ") +
                             "the last set failed: " + m_lastSetError->message;
        if (!m_rtcWriteFailed.empty()) // whatever the outcome: the clock moved
            m_result.note +=
                std::string(m_result.note.empty() ? "" : "; ") + rtcNotWritten(m_rtcWriteFailed);
        for (std::optional<Measurement>* m : {&m_result.before, &m_result.after})
            if (*m)
                noBetterThanItsStep(**m, m_lim.granularityNs);
        const int64_t now = m_clock.monotonicNs();
        m_result.durationNs = now - m_start;
        m_result.latencyNs = now - triggerNs();
        m_result.finishedAtNs = m_clock.realtimeNs();
        return m_result;
    }

    SyncResult fail(qga::Error e)
    {
        // Paused or stopped under our feet: nothing wrong with the guest's clock.
        if (e.kind == ErrorKind::NotRunning)
            return finish(Outcome::Cancelled, "domain no longer running: " + e.message);
        m_result.error = std::move(e);
        return finish(Outcome::Failed);
    }

    qga::GuestAgent& m_agent;
    const qga::Clock& m_clock;
    const SyncRequest& m_req;
    const SyncPolicy& m_policy;
    DelayModel& m_delay;
    const int64_t m_start;
    bool m_rtc; // also after a fallback from an unsupported explicit set
    SyncResult m_result;
    Limits m_lim;
    Measurement m_last; // the latest measurement: what the next set aims from
    int m_sets = 0;
    bool m_deferredOnce = false; // this refine stepped back for first sets (or was resumed)
    bool m_setFromQuiet = true;
    bool m_inPhase1 = false; // counted in the gate's phase 1
    bool m_inGate = false;
    int64_t m_coarseMonoNs = 0;
    struct UnlearnedSet
    {
        int64_t basisRttNs; // the round trip the estimate was made from
        int64_t estimateNs;
        int64_t atNs; // monotonic, when its busy verify ended
    };
    std::optional<UnlearnedSet> m_unlearned;  // a set whose busy verify taught nothing
    std::optional<qga::Error> m_lastSetError; // the last set failed (transient), retrying
    std::string m_rtcWriteFailed;             // a set moved the clock, then hwclock -w failed
};

Sync::Sync(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
           DelayModel& delay)
    : m_run(std::make_unique<SyncRun>(agent, clock, req, delay))
{
}

Sync::~Sync() = default;

std::optional<SyncResult> Sync::begin()
{
    return m_run->begin();
}

std::optional<SyncResult> Sync::refine()
{
    return m_run->refine();
}

int64_t Sync::pendingOffsetNs() const
{
    return m_run->pendingOffsetNs();
}

SyncResult runSync(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
                   DelayModel& delay)
{
    Sync s(agent, clock, req, delay);
    std::optional<SyncResult> r = s.begin();
    while (!r)
        r = s.refine();
    return *r;
}

} // namespace clocksync
