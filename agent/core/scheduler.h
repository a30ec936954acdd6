// SPDX-License-Identifier: Apache-2.0
// Runs syncs on a bounded worker pool so that no blocking libvirt or agent
// call ever runs on the main loop. Jobs start in submission order (a mass
// resume is served in trigger order); a job whose guest is within tolerance
// but due a refine steps back while others wait for their first set, and
// refines after them, the largest offset first (docs/design.md §4). Results come
// back on the main thread.
// The tracker guarantees at most one job per domain.
#pragma once

#include "domainbackend.h"
#include "ownsets.h"
#include "syncengine.h"
#include "syncplan.h"

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
    RequestTuning tuning;
    // The RTC offset from UTC (libvirt's live adjustment, basis='utc') a
    // variable clock is meant to have: the one it was last aimed at, or
    // someone else's change since. Kept over the configured one, which a
    // transient domain lacks (docs/design.md §5).
    std::optional<int64_t> intendedRtcNs;
    int64_t rtcAheadNs = 0; // how far its RTC ran ahead when last aimed at (basis='localtime')
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
};

struct JobResult
{
    SyncResult result;
    DelayModel delay;
    std::optional<PolicyOverride> policy; // as read for this job
    std::optional<int64_t> adjustmentNs;  // a variable clock's, as aimed at
    int64_t rtcAheadNs = 0;               // SyncJob::rtcAheadNs for the next job
};

// One job: the policy, the domain's facts, the agent, and its Sync in two
// phases (the refine may run later, on another worker). Not thread-safe: one
// worker at a time.
class JobRun
{
public:
    // ownSets: where its sets are recorded, and which its variable clock's
    // live adjustment is checked against (nullptr: neither).
    JobRun(DomainBackend& backend, const qga::Clock& clock, SyncJob job,
           std::function<bool()> othersWaiting, RefineGate* gate, OwnSetLedger* ownSets);
    ~JobRun();
    // Everything up to the guest within tolerance; true: the job is done.
    bool begin();
    bool refine(); // true: done
    int64_t pendingOffsetNs() const;
    JobResult take();

private:
    void anchorAdjustment(DomainFacts& facts) const;
    bool startSync(const IntendedTime& target);
    void finishSync(SyncResult r);
    void finishEarly(Outcome o, std::optional<qga::Error> e, std::string note);

    DomainBackend& m_backend;
    const qga::Clock& m_clock;
    OwnSetLedger* m_ownSets;
    const SyncJob m_job;
    JobResult m_out;
    SyncRequest m_req;
    std::unique_ptr<qga::GuestAgent> m_agent;
    std::unique_ptr<Sync> m_sync;
    IntendedTime m_target;                 // what the sync aims at
    int64_t m_rtcAheadNs = 0;              // the domain's RTC ahead of its system clock
    std::optional<std::string> m_nextBoot; // the persistent definition's other policy
};

class Scheduler : public QObject
{
    Q_OBJECT
public:
    Scheduler(DomainBackend& backend, const qga::Clock& clock, int concurrency,
              QObject* parent = nullptr);
    // Jobs run on `executor` (the simulation's deterministic one).
    Scheduler(DomainBackend& backend, const qga::Clock& clock, std::unique_ptr<Executor> executor,
              QObject* parent = nullptr);
    ~Scheduler() override;

    void submit(SyncJob job);
    // Every set of every job, for telling our RTC writes from anyone else's.
    OwnSetLedger& ownSets() { return m_ownSets; }
    int running() const { return m_running.load(); }
    int peakRunning() const { return m_peak.load(); }
    // Waits for in-flight jobs (at shutdown); false on timeout.
    bool waitForDone(int msecs);

    // The work of one job, on a worker thread. Public for tests.
    static JobResult execute(DomainBackend& backend, const qga::Clock& clock, const SyncJob& job);

signals:
    void finished(const clocksync::JobResult& result);

private:
    template <typename F> bool counted(F&& work);
    void deliver(const Lifetime::Handle& back, JobRun& run);
    void refineLater(const Lifetime::Handle& back, const std::shared_ptr<JobRun>& run);

    DomainBackend& m_backend;
    const qga::Clock& m_clock;
    Lifetime m_life;   // results of a destroyed scheduler are dropped
    RefineGate m_gate; // before the pool: its workers use it until joined
    OwnSetLedger m_ownSets;
    std::unique_ptr<Executor> m_pool;
    std::atomic<int> m_running{0};
    std::atomic<int> m_peak{0};
};

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::JobResult)
