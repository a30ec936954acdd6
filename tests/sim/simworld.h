// SPDX-License-Identifier: Apache-2.0
// The simulation's host: libvirt's domains as libvirt would hold them (state,
// <clock>, policy metadata live and persistent, agent channel), their guests'
// clocks and agents, and the events libvirt would send. The daemon sees it
// through the same seams it has in production -- Hypervisor, DomainBackend,
// GuestAgent -- and everything it does to a guest is checked here against the
// invariants of docs/design.md §11 at the moment it happens.
#pragma once

#include "definedpolicy.h"
#include "domainevent.h"
#include "fakes.h"
#include "hypervisor.h"
#include "settings.h"

#include <QString>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sim {

enum class ClockKind { Utc, Localtime, Timezone, VariableUtc, VariableLocaltime, Absolute };
const char* clockKindName(ClockKind k);

struct Domain
{
    std::string uuid;
    std::string name;
    bool persistent = true;
    bool exists = true; // libvirt knows it (defined, or a running transient)
    enum class State { Shutoff, Running, Paused, Saved } state = State::Shutoff;
    ClockKind clock = ClockKind::Utc;
    int64_t adjustmentS = 0;     // configured (inactive XML)
    int64_t liveAdjustmentS = 0; // live XML, moved by every RTC write (ours too)
    // The truth: the configured adjustment, or where the guest set its own clock.
    int64_t intendedNs = 0;
    bool agentChannel = true;
    QString livePolicy;   // our metadata element ("" none)
    QString configPolicy; // persistent definition's
    // The guest.
    int64_t guestOffsetNs = 0; // guest clock - host CLOCK_REALTIME
    bool agentUp = false;      // qemu-ga runs and its channel is connected
    bool agentStalled = false; // connected, does not answer
    bool noHwclock = false;    // a set lands, then the agent reports failure
    int64_t rttNs = 600'000;
    int64_t setDelayNs = 900'000; // request travel until settimeofday
    int64_t tickNs = 0;           // Windows: the clock advances per tick
    bool setWholeMs = false;      // Windows: sets whole milliseconds
    int64_t ntpStepNs = 0;        // the guest's NTP steps by this at its next read
    int64_t pausedAtNs = 0;       // host realtime when it stopped running
};

struct Violation
{
    std::string what;
};

class World;

// libvirt's event stream, as the daemon receives it: in order, late, some twice.
struct PendingEvent
{
    std::string uuid; // empty: a host-wide event
    clocksync::EventAction action;
    std::string label;
    int64_t hostStepNs = 0; // HostClockStep
    bool ours = false;      // caused by the daemon's own set or write
    // The guest's own clock change: what it meant before it.
    std::optional<int64_t> priorIntendedNs;
};

class World
{
public:
    World(FakeClock& clock, uint64_t seed);

    FakeClock& clock;
    std::mt19937_64 rng;
    std::map<std::string, Domain> domains;
    std::deque<PendingEvent> events;
    std::vector<std::string> trace;
    std::vector<Violation> violations;
    clocksync::SyncPolicy defaults; // the daemon's config, as last reloaded
    int64_t hostUtcOffsetS = 0;
    bool connected = true;
    bool failListing = false;
    bool policyReadFails = false; // virDomainGetMetadata errors (connection trouble)
    bool metadataWriteFails = false;
    int agentTimeoutS = 5;
    // Interference inside agent calls (a pause, a policy edit, an NTP step
    // between two samples), probability per call.
    double interfere = 0.0;
    std::function<void()> onInterfere;
    int sets = 0;

    int64_t draw(int64_t lo, int64_t hi)
    {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    }
    bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

    void log(const std::string& line);
    void fail(const std::string& what);
    void emitEvent(const std::string& uuid, clocksync::EventAction a, const std::string& label,
                   bool ours = false);
    Domain* find(const std::string& uuid);

    // The oracle, from the world's truth (not the daemon's code): whether the
    // daemon may set this guest now, and the offset it must aim at.
    std::optional<int64_t> intendedOffsetNs(const Domain& d) const;
    clocksync::SyncPolicy effectivePolicy(const Domain& d, bool* problem) const;
    bool mayBeSet(const Domain& d, std::string* why) const;
    // Invariant 1 as a set is sent: the policy forbids it now, and either
    // the daemon was told (no event about it pending) or the policy it last
    // saw (delivered or read) forbade it as well. Empty: allowed.
    std::optional<std::string> forbiddenAtSend(const Domain& d) const;
    std::map<std::string, QString> policySeen; // uuid -> live policy as the daemon last saw it
    // Whether an event that changes what this domain should get (its policy,
    // the guest's own RTC change) waits undelivered: the daemon cannot know.
    bool policyEventPending(const std::string& uuid) const;

    // RTC_CHANGE as libvirt sends it, with the RTC's new offset from UTC
    // (a variable clock: its live adjustment in basis='utc' terms).
    clocksync::EventAction rtcEvent(const Domain& d) const;
    // The guest wrote its RTC (hwclock -w) from its system clock: libvirt
    // folds it into a variable clock's live adjustment, in whole seconds,
    // rounded either way.
    void rtcWritten(Domain& d);
    // XML as libvirt would give it.
    QString liveXml(const Domain& d) const;
    QString inactiveXml(const Domain& d) const;

    // The guest's agent side, called by SimAgent.
    void beforeAgentCall(const std::string& uuid);
    // What a set must respect, as it was sent: a change during the call
    // cannot recall it (the daemon's business is what it sends next).
    struct AtSend
    {
        std::optional<std::string> forbidden; // why it must not have been sent (invariant 1)
        std::optional<int64_t> wantNs;        // what it must aim at (invariant 2)
        bool intentPending = false;           // a change the daemon could not know yet
    };
    AtSend atSend(const std::string& uuid) const;
    void guestSet(Domain& d, int64_t guestNs, int64_t hostAtCallNs, const AtSend& rules);
};

class SimBackend final : public clocksync::DomainBackend
{
public:
    explicit SimBackend(World& w) : m_world(w) {}
    qga::Expected<clocksync::PolicyParse> readPolicy(const std::string& uuid) override;
    qga::Expected<bool> isRunning(const std::string& uuid) override;
    qga::Expected<std::unique_ptr<qga::GuestAgent>> openAgent(const std::string& uuid) override;
    qga::Expected<clocksync::DomainFacts> facts(const std::string& uuid) override;
    clocksync::DefinedPolicyWatch definedWatch;

private:
    World& m_world;
};

class SimHypervisor final : public clocksync::Hypervisor
{
public:
    explicit SimHypervisor(World& w) : m_world(w), m_backend(w) {}
    void start() override { setConnected(true); }
    void stop() override { m_stopped = true; }
    bool isConnected() const override { return m_connected; }
    int reconnects() const override { return m_reconnects; }
    QString uri() const override { return QStringLiteral("sim:///"); }
    void listRunning(std::function<void(qga::Expected<clocksync::DomainList>)> fn) override;
    void listKnown(std::function<void(qga::Expected<clocksync::DomainList>)> fn) override;
    clocksync::DomainBackend& backend() override { return m_backend; }
    void setConnected(bool c);
    void deliver(const PendingEvent& e);

private:
    void list(bool runningOnly, std::function<void(qga::Expected<clocksync::DomainList>)> fn);

    World& m_world;
    SimBackend m_backend;
    bool m_connected = false;
    bool m_stopped = false;
    int m_reconnects = 0;
};

} // namespace sim
