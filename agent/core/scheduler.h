// SPDX-License-Identifier: Apache-2.0
// Runs syncs on a bounded worker pool so that no blocking libvirt or agent
// call ever runs on the main loop. Jobs start in submission order (a mass
// resume is served in trigger order); results come back on the main thread.
// The tracker guarantees at most one job per domain.
#pragma once

#include "domainbackend.h"
#include "syncengine.h"

#include "workerpool.h"
#include <QObject>

#include <atomic>
#include <memory>

namespace clocksync {

struct SyncJob
{
    std::string uuid;
    std::string domain;
    Trigger trigger = Trigger::Request;
    int64_t triggerMonoNs = 0;
    SyncPolicy defaults;
    DelayModel delay;
    uint64_t generation = 0; // the tracker's, copied into the result
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
};

struct JobResult
{
    SyncResult result;
    DelayModel delay;
    std::optional<PolicyOverride> policy; // as read for this job
};

// Why a job must not sync this guest at all (policy, no agent channel, an
// absolute clock), or nullopt. explicitMode: the domain's metadata sets mode.
std::optional<std::string> skipReason(Trigger t, const SyncPolicy& p, const DomainFacts& facts,
                                      bool explicitMode);

class Scheduler : public QObject
{
    Q_OBJECT
public:
    Scheduler(DomainBackend& backend, const qga::Clock& clock, int concurrency,
              QObject* parent = nullptr);
    ~Scheduler() override;

    void submit(SyncJob job);
    int running() const { return m_running.load(); }
    int peakRunning() const { return m_peak.load(); }
    // Waits for in-flight jobs (at shutdown); false on timeout.
    bool waitForDone(int msecs);

    // The work of one job, on a worker thread. Public for tests.
    static JobResult execute(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job);

signals:
    void finished(const clocksync::JobResult& result);

private:
    DomainBackend& m_backend;
    const qga::Clock& m_clock;
    Lifetime m_life; // results of a destroyed scheduler are dropped
    WorkerPool m_pool;
    std::atomic<int> m_running{0};
    std::atomic<int> m_peak{0};
};

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::JobResult)
