// SPDX-License-Identifier: Apache-2.0
// Where the scheduler's jobs run: the daemon's bounded WorkerPool, or, in the
// simulation (tests/sim), a deterministic executor that runs them one at a
// time on the main thread in an order drawn from a seed (docs/design.md §11).
#pragma once

#include <cstdint>
#include <functional>

namespace clocksync {

class Executor
{
public:
    virtual ~Executor() = default;
    // A job, started in submission order.
    virtual void submit(std::function<void()> job) = 0;
    // A job that runs only when no plain job waits, the highest rank first.
    virtual void submitLater(std::function<void()> job, int64_t rank) = 0;
    // Whether plain jobs wait for a worker (from any thread).
    virtual bool hasQueued() = 0;
    // Waits until no job is queued or running; false on timeout.
    virtual bool waitForDone(int msecs) = 0;
};

} // namespace clocksync
