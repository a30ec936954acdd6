// SPDX-License-Identifier: Apache-2.0
// One state machine per domain, on the Qt main thread:
//   idle → pending → (waiting for agent) → syncing → idle (result kept)
// Triggers arriving meanwhile coalesce; a pause/stop cancels pending work and
// aborts an in-flight sync before it sets anything more. Waiting for the agent
// is driven by agent-lifecycle events, bounded by a deadline timer.
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

    // Inputs (main thread).
    // waitForAgent: the agent is known to be reconnecting (restore, migration).
    // Returns a ticket: the first result of this domain whose `generation` is
    // at least the ticket comes from work that started after this trigger
    // (a sync already measuring when it arrives has an older generation).
    // A correcting trigger takes over a queued measure-only drift check.
    uint64_t trigger(const std::string& uuid, const std::string& name, Trigger t,
                     bool waitForAgent = false);
    void cancel(const std::string& uuid, const std::string& reason);
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
        std::shared_ptr<std::atomic<bool>> cancelled;
        std::optional<std::pair<Trigger, int64_t>> again; // arrived while syncing
        uint64_t generation = 0; // bumped by every start(): which results answer which trigger
        DelayModel delay;
        std::optional<SyncResult> last;
    };

    Entry& entry(const std::string& uuid, const std::string& name);
    // Idle → waiting for the agent, or straight to syncing.
    void start(Entry& e, Trigger t, int64_t triggerMonoNs);
    void dispatch(Entry& e);
    void waitForAgent(Entry& e);
    void onJobFinished(const JobResult& r);
    void onAgentDeadline(const std::string& uuid);
    void publish(Entry& e, SyncResult r);
    // A result for a wait that ended without a job (cancelled, agent deadline).
    SyncResult endedWithoutSync(const Entry& e, Outcome o) const;

    Scheduler& m_scheduler;
    const qga::Clock& m_clock;
    SyncPolicy m_defaults;
    int64_t m_agentWaitNs = 60'000'000'000;
    std::map<std::string, Entry> m_domains;
};

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::SyncResult)
