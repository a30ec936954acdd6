// SPDX-License-Identifier: Apache-2.0
// The outcome of one sync, as logged, counted and shown by `status`.
#pragma once

#include "expected.h"
#include "policy.h"
#include "sample.h"
#include "trigger.h"

#include <cstdint>
#include <optional>
#include <string>

namespace clocksync {

enum class Outcome {
    InSync,      // measured within tolerance: not touched
    Synced,      // set and verified within target
    Approximate, // set and verified within tolerance, but not within target
    Failed,      // could not measure, set, or verify
    Cancelled,   // the domain paused/stopped/vanished meanwhile: nothing (more) set
    Skipped,     // policy says leave this guest alone
    Drifted,     // drift watch (measure only): outside tolerance, not corrected
    // (the last: metrics enumerate the outcomes up to it)
};
const char* outcomeName(Outcome o);

struct Measurement
{
    int64_t offsetNs = 0;      // guest - host, from the min-RTT sample
    int64_t uncertaintyNs = 0; // half that sample's round trip
    int64_t rttNs = 0;
    int samples = 0;
    int64_t firstGuestNs = 0; // raw readings, to tell a stopped clock
    int64_t lastGuestNs = 0;
    int64_t firstHostNs = 0;
    int64_t lastHostNs = 0;
    // The guest clock's read resolution seen in these samples: 1 ms for an
    // agent that reads in whole milliseconds (Windows SetSystemTime-era
    // qemu-ga), else 1 (unknown, assumed fine).
    int64_t granularityNs = 1;
};

struct SyncResult
{
    std::string uuid;
    std::string domain;
    Trigger trigger = Trigger::Request;
    Outcome outcome = Outcome::Failed;
    std::optional<Measurement> before;
    std::optional<Measurement> after;
    int attempts = 0;   // set calls made
    int remeasures = 0; // refine phase: measurements waiting for a quiet path
    std::string transport;
    SyncMode mode = SyncMode::Host; // host, or rtc (also after a fallback)
    int64_t delayEstimateNs = 0;    // host→guest delay used for the last set
    int64_t durationNs = 0;         // engine run time
    int64_t latencyNs = 0;          // trigger → outcome (refined)
    // trigger → the guest first verified within tolerance (phase 1); 0: never
    int64_t coarseLatencyNs = 0;
    int64_t finishedAtNs = 0; // host realtime
    std::optional<qga::Error> error;
    std::string note;        // human detail (why skipped, ...)
    uint64_t generation = 0; // the domain's trigger generation (DomainTracker::trigger)
    // Skipped because its policy metadata or domain XML could not be read or
    // understood: the operator has something to fix.
    bool configProblem = false;
    // The persistent definition carries another policy than the live one,
    // pending until the next boot: its XML ("" for none).
    std::optional<std::string> nextBootPolicy;

    bool ok() const
    {
        return outcome == Outcome::InSync || outcome == Outcome::Synced ||
               outcome == Outcome::Approximate || outcome == Outcome::Skipped;
    }
};

// One line for logs and the CLI: "resumed: -5.812 s -> +12 us in 2 attempts (31 ms)".
std::string describe(const SyncResult& r);
std::string formatOffset(int64_t ns);

} // namespace clocksync
