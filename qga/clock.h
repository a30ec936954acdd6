// SPDX-License-Identifier: Apache-2.0
// The host clock, behind an interface so that the sync algorithm can run
// against a simulated clock in tests (chrony's clknetsim idea).
#pragma once

#include <cstdint>

namespace qga {

class Clock
{
public:
    virtual ~Clock() = default;
    // CLOCK_REALTIME in nanoseconds since the epoch: what guests are set to.
    virtual int64_t realtimeNs() const = 0;
    // CLOCK_MONOTONIC in nanoseconds: for durations and deadlines.
    virtual int64_t monotonicNs() const = 0;
    // Lets this much monotonic time pass (the engine's pause between checks
    // for a quiet path; a simulated clock just advances).
    virtual void sleepNs(int64_t ns) const = 0;
};

class SystemClock final : public Clock
{
public:
    int64_t realtimeNs() const override;
    int64_t monotonicNs() const override;
    void sleepNs(int64_t ns) const override;
    static const SystemClock& instance();
};

} // namespace qga
