// SPDX-License-Identifier: Apache-2.0
// How a result reads: outcome names, offsets, the one-line description.
#include "syncresult.h"

#include <cstdio>
#include <cstdlib>

namespace clocksync {

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
    char ms[64];
    // Phase 1's moment, where it differs from the end: a refine followed
    // (not on a failure: the guest did not stay there).
    if (r.ok() && r.attempts > 0 && r.coarseLatencyNs > 0 && r.coarseLatencyNs != r.latencyNs) {
        std::snprintf(ms, sizeof(ms), "within tolerance at %.1f ms, ", r.coarseLatencyNs / 1e6);
        s += ", " + std::string(ms);
    } else {
        s += ", ";
    }
    std::snprintf(ms, sizeof(ms), "%.1f ms", r.latencyNs / 1e6);
    s += std::string(ms) + " after trigger";
    if (r.error)
        s += ": " + r.error->message;
    if (!r.note.empty())
        s += " (" + r.note + ")";
    return s;
}

} // namespace clocksync
