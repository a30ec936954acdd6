// SPDX-License-Identifier: Apache-2.0
// A bounded pool of worker threads, and the way back to the main loop. Jobs
// start in submission order; "later" jobs (a refine, docs/design.md §4) only when no
// plain job waits, the highest rank first.
//
// Why not QThreadPool + queued lambdas: handing data between threads through
// Qt's internals is invisible to ThreadSanitizer (Debian's Qt is not built
// with it), so every handoff would be reported, and real races would hide in
// the noise. Here every handoff goes through a std::mutex that TSan sees:
// jobs into the pool, and closures back to the main thread (MainThreadQueue
// only *wakes* the main loop through Qt; it carries no data that way).
#pragma once

#include "executor.h"

#include <QObject>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace clocksync {

class WorkerPool final : public Executor
{
public:
    explicit WorkerPool(int threads);
    ~WorkerPool() override; // finishes queued jobs, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void submit(std::function<void()> job) override;
    void submitLater(std::function<void()> job, int64_t rank) override;
    bool hasQueued() override;
    bool waitForDone(int msecs) override;

private:
    void run();

    std::mutex m_mutex;
    std::condition_variable m_work;
    std::condition_variable m_idle;
    std::deque<std::function<void()>> m_queue;
    std::multimap<int64_t, std::function<void()>, std::greater<>> m_later;
    int m_busy = 0;
    bool m_stopping = false;
    std::vector<std::thread> m_threads;
};

// Runs closures posted from any thread on the thread that owns it (the main
// loop), in order.
class MainThreadQueue : public QObject
{
    Q_OBJECT
public:
    explicit MainThreadQueue(QObject* parent = nullptr) : QObject(parent) {}
    void post(std::function<void()> fn);

    // Process-wide instance on the main thread (created on first use there).
    static MainThreadQueue& instance();

private:
    Q_INVOKABLE void drain();

    std::mutex m_mutex;
    std::deque<std::function<void()>> m_pending;
    bool m_wakePending = false;
};

// "Post back if the receiver is still alive": an object that hands work to
// other threads owns a Lifetime; the work captures a Handle (taken on the
// owner's thread) and posts its continuation through it. The continuation runs
// on the main thread only if the owner has not revoked it (its destructor, on
// the main thread, does) by then.
class Lifetime
{
public:
    class Handle
    {
    public:
        // From any thread: fn runs on the main thread, unless revoked by then.
        void post(std::function<void()> fn) const;

    private:
        friend class Lifetime;
        explicit Handle(std::weak_ptr<int> token) : m_token(std::move(token)) {}
        std::weak_ptr<int> m_token;
    };

    Handle handle() const { return Handle(m_token); }
    // Drops every continuation not run yet. Main thread; idempotent.
    void revoke() { m_token.reset(); }
    ~Lifetime() { revoke(); }

private:
    std::shared_ptr<int> m_token = std::make_shared<int>(0);
};

} // namespace clocksync
