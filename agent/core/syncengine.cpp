// Sync engine.
#include "syncengine.h"

#include <QLoggingCategory>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

Q_LOGGING_CATEGORY(lcEngine, "clocksync.engine", QtInfoMsg)

namespace clocksync {

using qga::ErrorKind;
using qga::Expected;

const char* outcomeName(Outcome o)
{
    switch (o) {
    case Outcome::InSync:
        return "in-sync";
    case Outcome::Synced:
        return "synced";
    case Outcome::Approximate:
        return "approximate";
    case Outcome::Failed:
        return "failed";
    case Outcome::Cancelled:
        return "cancelled";
    case Outcome::Skipped:
        return "skipped";
    case Outcome::Drifted:
        return "drifted";
    }
    return "failed";
}

std::string formatOffset(int64_t ns)
{
    char buf[64];
    const double a = std::llabs(ns);
    const char sign = ns < 0 ? '-' : '+';
    if (a >= 1e9)
        std::snprintf(buf, sizeof(buf), "%c%.3f s", sign, a / 1e9);
    else if (a >= 1e6)
        std::snprintf(buf, sizeof(buf), "%c%.3f ms", sign, a / 1e6);
    else
        std::snprintf(buf, sizeof(buf), "%c%.1f us", sign, a / 1e3);
    return buf;
}

std::string describe(const SyncResult& r)
{
    std::string s = std::string(triggerName(r.trigger)) + ": " + outcomeName(r.outcome);
    if (r.before)
        s += ", offset " + formatOffset(r.before->offsetNs);
    if (r.before && r.after && r.attempts == 0) // verified in place: no set made
        s += " (+/-" + formatOffset(r.after->uncertaintyNs).substr(1) + ")";
    if (r.after && r.attempts > 0)
        s += " -> " + formatOffset(r.after->offsetNs) + " (+/-" +
             formatOffset(r.after->uncertaintyNs).substr(1) + ")";
    if (r.attempts > 0)
        s += ", " + std::to_string(r.attempts) + (r.attempts == 1 ? " set" : " sets");
    char ms[32];
    std::snprintf(ms, sizeof(ms), "%.1f ms", r.latencyNs / 1e6);
    s += ", " + std::string(ms) + " after trigger";
    if (r.error)
        s += ": " + r.error->message;
    if (!r.note.empty())
        s += " (" + r.note + ")";
    return s;
}

// ---- delay model ---------------------------------------------------------

static int64_t medianOf(const std::array<int64_t, DelayModel::kWindow>& a, int n)
{
    // A vector, not an in-place sort of the array: GCC 12 -O2 warns falsely
    // (-Warray-bounds) on std::sort over a std::array prefix.
    std::vector<int64_t> v(a.begin(), a.begin() + n);
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

int64_t DelayModel::biasNs() const
{
    const int n = std::min(observations, kWindow);
    if (n == 0)
        return 0;
    if (n < 3)
        return std::llabs(recentBiasNs[0]) <= std::llabs(recentBiasNs[std::size_t(n - 1)])
                   ? recentBiasNs[0]
                   : recentBiasNs[std::size_t(n - 1)];
    return medianOf(recentBiasNs, n);
}

void DelayModel::noteRtt(int64_t rttNs)
{
    recentRttNs[std::size_t(rttCount % kRttWindow)] = rttNs;
    ++rttCount;
    const int n = std::min(rttCount, kRttWindow);
    bestRttNs = *std::min_element(recentRttNs.begin(), recentRttNs.begin() + n);
}

bool DelayModel::plausible(int64_t residualNs, int64_t toleranceNs) const
{
    const int64_t a = std::llabs(residualNs);
    return a <= toleranceNs || (jitterNs() > 0 && a <= 4 * jitterNs());
}

int64_t DelayModel::jitterNs() const
{
    const int n = std::min(observations, kWindow);
    if (n < 3)
        return 0;
    const int64_t med = medianOf(recentBiasNs, n);
    std::array<int64_t, kWindow> dev{};
    for (int i = 0; i < n; ++i)
        dev[std::size_t(i)] = std::llabs(recentBiasNs[std::size_t(i)] - med);
    return medianOf(dev, n);
}

int64_t DelayModel::estimate(int64_t rttNs) const
{
    return std::max<int64_t>(0, rttNs / 2 + biasNs());
}

void DelayModel::learn(int64_t rttNs, int64_t estimateNs, int64_t residualNs)
{
    // A guest that lies could teach us nonsense: clamp the observed delay.
    const int64_t observed = std::clamp<int64_t>(estimateNs - residualNs, 0, 100'000'000);
    recentBiasNs[std::size_t(observations % kWindow)] = observed - rttNs / 2;
    ++observations;
}

// ---- measurement ---------------------------------------------------------

// 1 ms when every reading is a whole millisecond (three or more, not all the
// same: by chance that is one in a billion), else 1. Finer steps are below
// any target.
static int64_t readGranularity(const std::vector<qga::TimeSample>& taken)
{
    constexpr int64_t kMs = 1'000'000;
    if (taken.size() < 3 || taken.front().guestNs == taken.back().guestNs) // or a stopped clock
        return 1;
    for (const qga::TimeSample& s : taken)
        if (s.guestNs % kMs != 0)
            return 1;
    return kMs;
}

// A guest clock that shows no progress over this much host time is stopped
// (generous: Windows guests tick in 15.6 ms steps).
constexpr int64_t kStoppedClockSpanNs = 20'000'000;

Expected<Measurement> measure(qga::GuestAgent& agent, int samples, int64_t goodRttNs)
{
    std::vector<qga::TimeSample> taken;
    taken.reserve(std::size_t(samples) * 3);
    for (int i = 0; i < samples * 3; ++i) {
        if (i >= samples) {
            // Enough unless the host is busy and a quieter sample is likely.
            const qga::TimeSample* best = qga::minRttSample(taken);
            if (goodRttNs <= 0 || best->rttNs() <= 2 * goodRttNs)
                break;
        }
        Expected<qga::TimeSample> s = agent.getTime();
        if (!s)
            return s.error();
        if (s->rttNs() < 0)
            return qga::makeError(ErrorKind::Internal, "host clock stepped during a measurement");
        if (!taken.empty() && s->guestNs < taken.back().guestNs)
            return qga::makeError(ErrorKind::BadClock,
                                  "guest clock went backwards between samples");
        taken.push_back(*s);
    }
    const qga::TimeSample* best = qga::minRttSample(taken);
    if (!best)
        return qga::makeError(ErrorKind::Internal, "no samples");
    const qga::TimeSample& first = taken.front();
    const qga::TimeSample& last = taken.back();
    if (taken.size() > 1 && first.guestNs == last.guestNs &&
        last.hostAfterNs - first.hostBeforeNs >= kStoppedClockSpanNs)
        return qga::makeError(ErrorKind::BadClock, "guest clock does not advance");
    return Measurement{best->offsetNs(),   best->uncertaintyNs(), best->rttNs(),
                       int(taken.size()),  first.guestNs,         last.guestNs,
                       first.hostBeforeNs, last.hostAfterNs,      readGranularity(taken)};
}

// ---- the decisions ---------------------------------------------------------

constexpr int64_t kRtcResolutionNs = 1'000'000'000;

Limits effectiveLimits(const SyncPolicy& p, bool rtc, int64_t granularityNs)
{
    if (rtc) {
        const int64_t tol = std::max(p.skipBelowNs, kRtcResolutionNs);
        return {tol, tol, kRtcResolutionNs};
    }
    return {std::max(p.targetNs, granularityNs), std::max(p.skipBelowNs, granularityNs),
            granularityNs};
}

bool backwardStepRefused(const SyncPolicy& p, Trigger t, const Measurement& m)
{
    const bool hostSide = t == Trigger::Reconcile || t == Trigger::HostClockStep;
    return hostSide && p.maxBackwardStepNs > 0 && m.offsetNs > p.maxBackwardStepNs;
}

bool inTolerance(const Measurement& m, const Limits& l)
{
    return std::llabs(m.offsetNs) <= l.toleranceNs;
}

bool closeEnough(const Measurement& m, const Limits& l)
{
    return inTolerance(m, l) && std::llabs(m.offsetNs) <= 4 * l.targetNs;
}

std::optional<Outcome> verdict(const Measurement& v, const Limits& l, bool rtc, int64_t jitterNs,
                               std::string& note)
{
    const int64_t a = std::llabs(v.offsetNs);
    if (rtc) {
        if (a > l.toleranceNs)
            return std::nullopt;
        note = "RTC resolution: whole seconds";
        return Outcome::Approximate;
    }
    if (a <= l.targetNs) {
        if (a + v.uncertaintyNs <= l.toleranceNs)
            return Outcome::Synced;
        note = "within target, but the verify's uncertainty (+/-" +
               formatOffset(v.uncertaintyNs).substr(1) + ") reaches past the tolerance";
        return Outcome::Approximate;
    }
    // Another set is expected to land about `jitter` from where we aim: if
    // we are already that close (and within tolerance), a further set is as
    // likely to make it worse as better. Stop, and say so.
    if (a <= jitterNs && a <= l.toleranceNs) {
        note = "stopped at the set jitter (" + formatOffset(jitterNs).substr(1) + ")";
        return Outcome::Approximate;
    }
    return std::nullopt;
}

bool shouldLearn(const Measurement& v, const DelayModel& d, const Limits& l)
{
    // A coarse clock's residual within one step is quantisation, not delay.
    const bool quantised = l.granularityNs > 1 && std::llabs(v.offsetNs) <= l.granularityNs;
    return v.rttNs <= 2 * d.bestRttNs && d.plausible(v.offsetNs, l.toleranceNs) && !quantised;
}

// ---- the sync ------------------------------------------------------------

namespace {

bool transient(ErrorKind k)
{
    return k == ErrorKind::Timeout || k == ErrorKind::Transport;
}

} // namespace

// The algorithm of DESIGN.md section 3: measure; leave a guest within its
// tolerance alone; set host now + d; verify; re-correct until the verify
// supports an outcome (verdict) or the attempts run out -- `attempts`
// rounds, and as many again while the guest is not yet close (closeEnough).
// The decisions are the pure functions above; this is the I/O around them.
SyncResult runSync(qga::GuestAgent& agent, const qga::Clock& clock, const SyncRequest& req,
                   DelayModel& delay)
{
    const int64_t start = clock.monotonicNs();
    SyncResult r;
    r.trigger = req.trigger;
    r.transport = agent.transport();
    r.mode = syncModeName(req.policy.mode);
    auto finish = [&](Outcome o) {
        r.outcome = o;
        r.durationNs = clock.monotonicNs() - start;
        r.latencyNs = clock.monotonicNs() - (req.triggerMonoNs ? req.triggerMonoNs : start);
        r.finishedAtNs = clock.realtimeNs();
        return r;
    };
    auto fail = [&](qga::Error e) {
        // Paused or stopped under our feet: nothing wrong with the guest's clock.
        if (e.kind == ErrorKind::NotRunning) {
            r.note = "domain no longer running: " + e.message;
            return finish(Outcome::Cancelled);
        }
        r.error = std::move(e);
        return finish(Outcome::Failed);
    };
    const SyncPolicy& p = req.policy;
    if (!p.enabled || p.mode == SyncMode::Off) {
        r.note = "policy: mode=off";
        return finish(Outcome::Skipped);
    }
    bool rtc = p.mode == SyncMode::Rtc; // also after a fallback from an unsupported explicit set

    Expected<Measurement> m = measure(agent, p.samples, delay.bestRttNs);
    if (!m)
        return fail(m.error());
    delay.noteRtt(m->rttNs);
    r.before = *m;
    Limits lim = effectiveLimits(p, rtc, m->granularityNs);
    if (inTolerance(*m, lim)) {
        r.after = *m;
        return finish(Outcome::InSync);
    }
    if (p.measureOnly) {
        r.note = "measured only (watch-correct=no)";
        return finish(Outcome::Drifted);
    }
    if (backwardStepRefused(p, req.trigger, *m)) {
        r.note = "policy: max-backward-step-ms=" + std::to_string(p.maxBackwardStepNs / 1'000'000) +
                 ": the guest is ahead, not stepped back on " + std::string(triggerName(req.trigger));
        return finish(Outcome::Skipped);
    }

    std::optional<qga::Error> lastSetError; // the last set failed (transient), retrying
    for (int attempt = 1; attempt <= 2 * p.attempts; ++attempt) {
        // Past the budget: go on while not close -- but a guest within its
        // tolerance never gets the very last set, which nothing could fix if
        // it landed badly (under load one set in a few hundred lands ms off).
        if (attempt > p.attempts && r.after &&
            (closeEnough(*r.after, lim) ||
             (attempt == 2 * p.attempts && inTolerance(*r.after, lim))))
            break;
        // Decide on the time only after the last confirmation that the domain runs.
        Expected<bool> up = req.stillRunning ? req.stillRunning() : Expected<bool>(true);
        if (!up) // cannot tell: report what failed first
            return fail(lastSetError ? std::move(*lastSetError) : up.error());
        if (!*up) {
            r.note = "domain no longer running";
            return finish(Outcome::Cancelled);
        }
        const int64_t d = rtc ? 0 : delay.estimate(m->rttNs);
        Expected<void> set = rtc ? agent.setTimeFromRtc() : agent.setTime(clock.realtimeNs() + d);
        r.attempts = attempt;
        r.delayEstimateNs = d;
        if (!set && !rtc && set.error().kind == ErrorKind::Unsupported) {
            // The hypervisor cannot set an explicit time: fall back to the RTC.
            rtc = true;
            r.mode = syncModeName(SyncMode::Rtc);
            lim = effectiveLimits(p, rtc, m->granularityNs);
            set = agent.setTimeFromRtc();
        }
        if (!set) {
            if (transient(set.error().kind) && attempt < 2 * p.attempts) {
                lastSetError = set.error();
                continue;
            }
            return fail(set.error());
        }
        lastSetError.reset(); // recovered: no longer the cause of anything
        Expected<Measurement> v = measure(agent, p.samples, delay.bestRttNs);
        if (!v)
            return fail(v.error());
        delay.noteRtt(v->rttNs);
        r.after = *v;
        qCDebug(lcEngine,
                "attempt %d: delay estimate %lld us, verified %+lld us (RTT %lld us, %d samples)",
                attempt, static_cast<long long>(d / 1000),
                static_cast<long long>(v->offsetNs / 1000), static_cast<long long>(v->rttNs / 1000),
                v->samples);
        // We asked to move the clock by more than the tolerance: reading the
        // very same nanosecond afterwards means it neither moved nor ticked
        // (a coarse clock may show the same millisecond: not evidence).
        if (v->firstGuestNs == m->lastGuestNs && lim.granularityNs <= 1)
            return fail(qga::makeError(ErrorKind::BadClock,
                                       "guest clock does not advance (it shows the same time "
                                       "before and after the set)"));
        if (!rtc && shouldLearn(*v, delay, lim))
            delay.learn(m->rttNs, d, v->offsetNs);
        if (std::optional<Outcome> o = verdict(*v, lim, rtc, delay.trustedJitterNs(), r.note))
            return finish(*o);
        if (rtc) // the RTC gives what it gives: another read of it changes nothing
            return fail(qga::makeError(ErrorKind::BadClock, "guest re-read its RTC but is still " +
                                                                formatOffset(v->offsetNs) +
                                                                " off"));
        m = v;
    }
    if (r.after && inTolerance(*r.after, lim))
        return finish(Outcome::Approximate);
    r.error = qga::makeError(ErrorKind::BadClock,
                             "residual " + formatOffset(r.after ? r.after->offsetNs : 0) +
                                 " still outside tolerance after " + std::to_string(r.attempts) +
                                 " attempts");
    return finish(Outcome::Failed);
}

} // namespace clocksync
