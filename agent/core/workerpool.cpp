// SPDX-License-Identifier: Apache-2.0
// WorkerPool and MainThreadQueue.
#include "workerpool.h"

#include <QCoreApplication>
#include <QMetaObject>

#include <chrono>

namespace clocksync {

WorkerPool::WorkerPool(int threads)
{
    for (int i = 0; i < threads; ++i)
        m_threads.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool()
{
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_work.notify_all();
    for (std::thread& t : m_threads)
        t.join();
}

void WorkerPool::submit(std::function<void()> job)
{
    {
        std::lock_guard lock(m_mutex);
        m_queue.push_back(std::move(job));
    }
    m_work.notify_one();
}

void WorkerPool::submitLater(std::function<void()> job, int64_t rank)
{
    {
        std::lock_guard lock(m_mutex);
        m_later.emplace(rank, std::move(job));
    }
    m_work.notify_one();
}

bool WorkerPool::hasQueued()
{
    std::lock_guard lock(m_mutex);
    return !m_queue.empty();
}

bool WorkerPool::waitForDone(int msecs)
{
    std::unique_lock lock(m_mutex);
    return m_idle.wait_for(lock, std::chrono::milliseconds(msecs),
                           [this] { return m_queue.empty() && m_later.empty() && m_busy == 0; });
}

void WorkerPool::run()
{
    std::unique_lock lock(m_mutex);
    for (;;) {
        m_work.wait(lock, [this] { return m_stopping || !m_queue.empty() || !m_later.empty(); });
        std::function<void()> job;
        if (!m_queue.empty()) {
            job = std::move(m_queue.front());
            m_queue.pop_front();
        } else if (!m_later.empty()) {
            job = std::move(m_later.begin()->second);
            m_later.erase(m_later.begin());
        } else {
            return; // stopping, and nothing left to do
        }
        ++m_busy;
        lock.unlock();
        job();
        job = nullptr; // destroy captures outside the lock
        lock.lock();
        --m_busy;
        if (m_queue.empty() && m_later.empty() && m_busy == 0)
            m_idle.notify_all();
    }
}

void MainThreadQueue::post(std::function<void()> fn)
{
    bool wake = false;
    {
        std::lock_guard lock(m_mutex);
        m_pending.push_back(std::move(fn));
        wake = !m_wakePending;
        m_wakePending = true;
    }
    if (wake)
        QMetaObject::invokeMethod(this, "drain", Qt::QueuedConnection);
}

void MainThreadQueue::drain()
{
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lock(m_mutex);
        batch.swap(m_pending);
        m_wakePending = false;
    }
    for (auto& fn : batch)
        fn();
}

void Lifetime::Handle::post(std::function<void()> fn) const
{
    MainThreadQueue::instance().post([token = m_token, fn = std::move(fn)] {
        if (token.lock())
            fn();
    });
}

MainThreadQueue& MainThreadQueue::instance()
{
    static MainThreadQueue* q = [] {
        auto* queue = new MainThreadQueue;
        queue->moveToThread(QCoreApplication::instance()->thread());
        queue->setParent(QCoreApplication::instance());
        return queue;
    }();
    return *q;
}

} // namespace clocksync
