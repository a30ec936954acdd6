// SPDX-License-Identifier: Apache-2.0
// One state machine per domain, on the Qt main thread:
//   idle → pending → (waiting for agent) → syncing → idle (result kept)
// Triggers arriving meanwhile coalesce; a pause/stop cancels pending work and
// aborts an in-flight sync before it sets anything more. Waiting for the agent
// is driven by agent-lifecycle events and retried on a backing-off timer (an
// agent that stopped answering sends no event), bounded by a deadline; past
// it, a few later retries (docs/design.md, "Agent waits").
#pragma once

#include "scheduler.h"

#include <QObject>
#include <QTimer>

#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace clocksync {

enum class DomainState { Idle, WaitingAgent, Syncing };
const char* domainStateName(DomainState s);

struct DomainStatus
{
    std::string uuid;
    std::string name;
    DomainState state = DomainState::Idle;
    std::optional<bool> agentConnected;
    std::optional<SyncResult> last;
    std::optional<Trigger> queued; // a trigger waiting behind the running sync
};

class DomainTracker : public QObject
{
    Q_OBJECT
public:
    DomainTracker(Scheduler& scheduler, const qga::Clock& clock, QObject* parent = nullptr);

    void setDefaults(const SyncPolicy& p) { m_defaults = p; }
    void setAgentWait(int64_t ns) { m_agentWaitNs = ns; }
    // The first retry of an agent that is missing or does not answer; each
    // next one waits twice as long, up to kMaxAgentRetryNs.
    void setFirstAgentRetry(int64_t ns) { m_firstRetryNs = ns; }
    static constexpr int64_t kMaxAgentRetryNs = 30'000'000'000;
    // After the agent-wait deadline: this many later tries, agent-wait x 1, 2, 4.
    static constexpr int kLateRetries = 3;

    // Inputs (main thread).
    // waitForAgent: the agent is known to be reconnecting (restore, migration).
    // Returns a ticket: the first result of this domain whose `generation` is
    // at least the ticket comes from work that started after this trigger
    // (a sync already measuring when it arrives has an older generation).
    // A correcting trigger takes over a queued measure-only drift check.
    // tuning: an operator's request's own samples/attempts, for its job.
    uint64_t trigger(const std::string& uuid, const std::string& name, Trigger t,
                     bool waitForAgent = false, const RequestTuning& tuning = {});
    void cancel(const std::string& uuid, const std::string& reason);
    // The domain's policy (or the defaults) changed: a sync in flight stops
    // before its next set -- it may now be told to leave the guest alone --
    // and a new job reads the policy again; an idle domain gets that job.
    void policyChanged(const std::string& uuid, const std::string& name)
    {
        rethink(uuid, name, Trigger::PolicyChanged);
    }
    // What a sync in flight aims at may be wrong now (its policy changed,
    // someone else set a variable clock): it stops before its next set and
    // its own trigger runs again; an idle domain gets idleTrigger.
    void rethink(const std::string& uuid, const std::string& name, Trigger idleTrigger);
    // Someone else set the guest's RTC (not a set of ours). A sync in flight
    // starts again: the next job follows libvirt's live adjustment of a
    // variable clock if it moved. meantNs: where the guest set it (libvirt's
    // RTC offset from UTC), to keep when a set of ours sent before may
    // overwrite it; nullopt: the live value tells (an event can be older
    // than a sync that already followed it).
    void rtcSetElsewhere(const std::string& uuid, const std::string& name,
                         std::optional<int64_t> meantNs);
    // The domain is gone (undefined): pending work is cancelled (a control
    // request waiting for it is answered) and nothing about it is kept; a
    // domain defined again later starts with a fresh delay model.
    void forget(const std::string& uuid);
    void agentState(const std::string& uuid, const std::string& name, bool connected);
    // After (re)connecting: the running domains; every one is checked.
    void reconcile(const std::vector<std::pair<std::string, std::string>>& running);

    std::vector<DomainStatus> status() const;
    int pendingCount() const;
    // A sync of ours is waiting for the agent or running for this domain.
    bool busy(const std::string& uuid) const;
    int trackedCount() const { return int(m_domains.size()); }

signals:
    void syncFinished(const clocksync::SyncResult& result);
    // The domain's effective policy, as read by its latest job.
    void policySeen(const std::string& uuid, const std::string& name,
                    const clocksync::SyncPolicy& policy);

private:
    struct Entry
    {
        std::string uuid;
        std::string name;
        DomainState state = DomainState::Idle;
        std::optional<bool> agentConnected;
        Trigger trigger = Trigger::Request;
        int64_t triggerMonoNs = 0;
        std::unique_ptr<QTimer> agentDeadline;
        std::unique_ptr<QTimer> agentRetry; // tries the agent again while waiting, and late
        int64_t retryNs = 0;                // the next retry's delay
        int lateRetries = 0;                // made since the last deadline passed
        // A set was sent and not answered: the agent may still run it, late,
        // with the time it carried. Asked again until it answers (and a
        // landing is measured), not given up after the late retries.
        bool setUnanswered = false;
        std::optional<qga::Error> agentError; // why the agent is being waited for
        bool connectedWhileSyncing = false;   // a "connected" event came during the job
        std::shared_ptr<std::atomic<bool>> cancelled;
        std::optional<std::pair<Trigger, int64_t>> again; // arrived while syncing
        // Unique across entries (a domain forgotten and seen again gets new
        // ones): which results answer which trigger, and which are stale.
        uint64_t generation = 0;
        RequestTuning tuning; // of a request, for the next job
        DelayModel delay;
        std::optional<int64_t> intendedRtc; // SyncJob::intendedRtcNs
        int64_t rtcAhead = 0;               // SyncJob::rtcAheadNs
        // Someone else set the clock while the job ran: what it aimed at is
        // no longer meant.
        bool intentMoved = false;
        std::optional<SyncResult> last;
    };

    Entry& entry(const std::string& uuid, const std::string& name);
    // Idle → waiting for the agent, or straight to syncing.
    void start(Entry& e, Trigger t, int64_t triggerMonoNs, bool lateRetry = false);
    void dispatch(Entry& e);
    void waitForAgent(Entry& e);
    void onJobFinished(const JobResult& r);
    void onAgentDeadline(const std::string& uuid);
    void onAgentRetry(const std::string& uuid);
    void armRetry(Entry& e, int64_t delayNs);
    void retryLate(Entry& e, bool untilAnswered = false);
    // Starts the trigger queued behind a job that ended (e.again), if any;
    // failedStillOwed: that job's trigger failed and wins over a measure-only one.
    void startQueued(Entry& e, bool failedStillOwed);
    void publish(Entry& e, SyncResult r);
    // A result for a wait that ended without a job (cancelled, agent deadline).
    SyncResult endedWithoutSync(const Entry& e, Outcome o) const;

    Scheduler& m_scheduler;
    const qga::Clock& m_clock;
    SyncPolicy m_defaults;
    int64_t m_agentWaitNs = 60'000'000'000;
    int64_t m_firstRetryNs = 1'000'000'000;
    uint64_t m_lastGeneration = 0;
    std::map<std::string, Entry> m_domains;
};

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::SyncResult)
