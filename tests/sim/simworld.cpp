// SPDX-License-Identifier: Apache-2.0
#include "simworld.h"

#include "domainxml.h"
#include "syncresult.h"

#include <QTimer>

#include <cstdlib>

using clocksync::applyOverride;
using clocksync::DomainFacts;
using clocksync::DomainList;
using clocksync::EventAction;
using clocksync::formatOffset;
using clocksync::parsedPolicyXml;
using clocksync::PolicyParse;
using clocksync::PolicyXml;
using clocksync::SyncMode;
using clocksync::SyncPolicy;
using clocksync::Trigger;

namespace sim {

const char* clockKindName(ClockKind k)
{
    switch (k) {
    case ClockKind::Utc:
        return "utc";
    case ClockKind::Localtime:
        return "localtime";
    case ClockKind::Timezone:
        return "timezone";
    case ClockKind::VariableUtc:
        return "variable/utc";
    case ClockKind::VariableLocaltime:
        return "variable/localtime";
    case ClockKind::Absolute:
        return "absolute";
    }
    return "?";
}

World::World(FakeClock& c, uint64_t seed) : clock(c), rng(seed) {}

void World::log(const std::string& line)
{
    char t[32];
    std::snprintf(t, sizeof t, "%10.3f ", double(clock.monotonicNs() % 100'000'000'000'000) / 1e9);
    trace.push_back(t + line);
}

void World::fail(const std::string& what)
{
    log("VIOLATION " + what);
    violations.push_back({what});
}

void World::emitEvent(const std::string& uuid, EventAction a, const std::string& label, bool ours)
{
    if (!connected)
        return; // events sent while the daemon is not connected are lost
    events.push_back({uuid, a, label, 0, ours, std::nullopt});
}

Domain* World::find(const std::string& uuid)
{
    auto it = domains.find(uuid);
    return it == domains.end() || !it->second.exists ? nullptr : &it->second;
}

bool World::policyEventPending(const std::string& uuid) const
{
    for (const PendingEvent& e : events)
        if (e.uuid == uuid && !e.ours &&
            (e.action.kind == EventAction::PolicyChanged ||
             e.action.kind == EventAction::RtcChanged))
            return true;
    return false;
}

SyncPolicy World::effectivePolicy(const Domain& d, bool* problem) const
{
    const PolicyParse p = parsedPolicyXml(d.livePolicy);
    *problem = !p.ok();
    return applyOverride(defaults, p.policy);
}

// What the guest's system clock is meant to read, relative to host UTC --
// worked out from the domain as the operator defined it.
std::optional<int64_t> World::intendedOffsetNs(const Domain& d) const
{
    bool problem = false;
    const SyncPolicy p = effectivePolicy(d, &problem);
    if (problem || !p.active() || p.mode == SyncMode::Rtc)
        return std::nullopt;
    if (p.mode == SyncMode::HostUtc)
        return 0;
    switch (d.clock) {
    case ClockKind::Utc:
    case ClockKind::Localtime:
    case ClockKind::Timezone:
        return 0;
    case ClockKind::VariableUtc:
    case ClockKind::VariableLocaltime:
        // The one it was started with, or the guest's own deliberate change
        // -- not whatever our own sets' RTC writes made of libvirt's value.
        return d.intendedNs;
    case ClockKind::Absolute:
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<std::string> World::forbiddenAtSend(const Domain& d) const
{
    std::string why;
    if (mayBeSet(d, &why))
        return std::nullopt;
    if (!policyEventPending(d.uuid))
        return why;
    auto seen = policySeen.find(d.uuid);
    if (seen == policySeen.end())
        return std::nullopt;
    Domain asSeen = d;
    asSeen.livePolicy = seen->second;
    std::string before;
    if (mayBeSet(asSeen, &before))
        return std::nullopt; // the daemon last saw a policy that allowed it
    return why + " (and so did the policy it last saw)";
}

bool World::mayBeSet(const Domain& d, std::string* why) const
{
    bool problem = false;
    const SyncPolicy p = effectivePolicy(d, &problem);
    if (problem)
        *why = "its policy metadata does not parse";
    else if (!p.active())
        *why = "its policy says off";
    else if (d.clock == ClockKind::Absolute && p.mode != SyncMode::HostUtc)
        *why = "its clock is absolute";
    else
        return true;
    return false;
}

void World::rtcWritten(Domain& d)
{
    const int64_t o = d.guestOffsetNs;
    if (d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime)
        d.liveAdjustmentS =
            o / 1'000'000'000 + (chance(0.5) ? 1 : 0) - (o < 0 && o % 1'000'000'000 ? 1 : 0);
}

EventAction World::rtcEvent(const Domain& d) const
{
    EventAction a{EventAction::RtcChanged, Trigger::RtcChanged};
    if (d.clock == ClockKind::VariableUtc)
        a.rtcOffsetS = d.liveAdjustmentS;
    else if (d.clock == ClockKind::VariableLocaltime)
        a.rtcOffsetS = d.liveAdjustmentS + hostUtcOffsetS;
    else
        a.rtcOffsetS = std::llround(double(d.guestOffsetNs) / 1e9);
    return a;
}

static QString clockXml(const Domain& d, bool live, int64_t hostUtcOffsetS)
{
    switch (d.clock) {
    case ClockKind::Utc:
        return "<clock offset='utc'/>";
    case ClockKind::Localtime:
        return "<clock offset='localtime'/>";
    case ClockKind::Timezone:
        return "<clock offset='timezone' timezone='Europe/Paris'/>";
    case ClockKind::VariableUtc:
        return QString("<clock offset='variable' adjustment='%1' basis='utc'/>")
            .arg(live ? d.liveAdjustmentS : d.adjustmentS);
    case ClockKind::VariableLocaltime:
        // libvirt's live XML says basis='utc', the adjustment converted.
        if (live)
            return QString("<clock offset='variable' adjustment='%1' basis='utc'/>")
                .arg(d.liveAdjustmentS + hostUtcOffsetS);
        return QString("<clock offset='variable' adjustment='%1' basis='localtime'/>")
            .arg(d.adjustmentS);
    case ClockKind::Absolute:
        return "<clock offset='absolute' start='1234567890'/>";
    }
    return {};
}

QString World::liveXml(const Domain& d) const
{
    QString channel = d.agentChannel
                          ? QString("<channel type='unix'><target type='virtio' "
                                    "name='org.qemu.guest_agent.0' state='%1'/></channel>")
                                .arg(d.agentUp ? "connected" : "disconnected")
                          : QString();
    return "<domain type='qemu'><name>" + QString::fromStdString(d.name) + "</name>" +
           clockXml(d, true, hostUtcOffsetS) + "<devices>" + channel + "</devices></domain>";
}

QString World::inactiveXml(const Domain& d) const
{
    QString channel = d.agentChannel ? QString("<channel type='unix'><target type='virtio' "
                                               "name='org.qemu.guest_agent.0'/></channel>")
                                     : QString();
    return "<domain type='qemu'><name>" + QString::fromStdString(d.name) + "</name>" +
           clockXml(d, false, hostUtcOffsetS) + "<devices>" + channel + "</devices></domain>";
}

void World::beforeAgentCall(const std::string& uuid)
{
    if (onInterfere && chance(interfere)) {
        log("  (during an agent call of " + domains[uuid].name + ")");
        onInterfere();
    }
}

World::AtSend World::atSend(const std::string& uuid) const
{
    AtSend a;
    auto it = domains.find(uuid);
    if (it == domains.end() || !it->second.exists)
        return a;
    a.forbidden = forbiddenAtSend(it->second);
    a.wantNs = intendedOffsetNs(it->second);
    a.intentPending = policyEventPending(uuid);
    return a;
}

// The guest's clock is set: check the invariants against what held when
// the request was sent.
void World::guestSet(Domain& d, int64_t guestNs, int64_t hostAtCallNs, const AtSend& rules)
{
    ++sets;
    const int64_t landed = guestNs - clock.realtimeNs();
    // What the daemon aimed at: the time it sent against the host's when it
    // sent it. Where it lands also depends on how long the request took (a
    // busy host, a guest asleep meanwhile): the verify's business, and
    // invariant 3's.
    const int64_t aimed = guestNs - hostAtCallNs;
    if (rules.forbidden)
        fail("invariant 1: " + d.name + " was set although " + *rules.forbidden);
    if (rules.wantNs && !rules.intentPending) {
        // A set aims at the intended time; its delay compensation and the
        // guest's tick leave it a few milliseconds off at most, a wrong
        // target seconds or hours.
        // libvirt knows a variable clock's adjustment to the RTC's whole
        // second: following the guest's own change, a second either way.
        const bool variable =
            d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime;
        const int64_t slack = 50'000'000 + d.tickNs + (variable ? 1'000'000'000 : 0);
        if (std::llabs(aimed - *rules.wantNs) > slack)
            fail("invariant 2: " + d.name + " (" + clockKindName(d.clock) + ") aimed at host " +
                 formatOffset(aimed) + ", its intended time is host " +
                 formatOffset(*rules.wantNs));
    }
    d.guestOffsetNs = landed;
    log("  set " + d.name + " -> " + formatOffset(landed));
    // Landing over a change the guest made to its own clock, before the
    // daemon heard of it, aimed at what the guest meant before: the guest's
    // clock and RTC are ours again and its change is lost (the daemon cannot
    // tell that event from one older than a sync that followed it;
    // docs/design.md §5). What it meant before is meant again. (Without
    // hwclock our set leaves the RTC, and libvirt's value, the guest's.)
    for (PendingEvent& e : events)
        if (!d.noHwclock && e.uuid == d.uuid && e.priorIntendedNs &&
            std::llabs(aimed - *e.priorIntendedNs) <= 1'050'000'000 + d.tickNs) {
            log("  (overwrites " + d.name + "'s own change, not yet reported)");
            d.intendedNs = *e.priorIntendedNs;
            for (PendingEvent& x : events)
                if (x.uuid == d.uuid)
                    x.priorIntendedNs.reset();
            break;
        }
    // mode=host-utc over a variable clock: the policy overrides what the
    // guest meant, and once our write replaces its RTC, what it meant is its
    // definition again (for a later mode=host).
    bool problem = false;
    if (!d.noHwclock &&
        (d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime) &&
        effectivePolicy(d, &problem).mode == SyncMode::HostUtc && !problem)
        d.intendedNs = d.adjustmentS * 1'000'000'000;
    // qemu-ga then writes the RTC (hwclock -w); libvirt follows it in whole
    // seconds, rounded either way, and says so (RTC_CHANGE).
    if (!d.noHwclock) {
        rtcWritten(d);
        emitEvent(d.uuid, rtcEvent(d), "rtc-change (our set)", true);
    }
}

namespace {

// A guest's qemu-ga as libvirt's typed Get/SetTime reach it.
class SimAgent final : public qga::GuestAgent
{
public:
    SimAgent(World& w, std::string uuid) : m_world(w), m_uuid(std::move(uuid)) {}
    std::string transport() const override { return "sim"; }
    qga::Expected<void> ping() override { return {}; }
    qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }

    // The domain, if its agent can answer now (else the error libvirt gives).
    qga::Expected<Domain*> reach()
    {
        m_world.beforeAgentCall(m_uuid);
        Domain* d = m_world.find(m_uuid);
        if (!d || d->state != Domain::State::Running)
            return qga::makeError(qga::ErrorKind::NotRunning, "domain is not running");
        if (!d->agentUp) {
            m_world.clock.advance(100'000);
            return qga::makeError(
                qga::ErrorKind::AgentUnavailable,
                "Guest agent is not responding: QEMU guest agent is not connected");
        }
        if (d->agentStalled) {
            m_world.clock.advance(int64_t(m_world.agentTimeoutS) * 1'000'000'000);
            return qga::makeError(
                qga::ErrorKind::Timeout,
                "Guest agent is not responding: Guest agent not available for now");
        }
        return d;
    }

    qga::Expected<qga::TimeSample> getTime() override
    {
        qga::Expected<Domain*> r = reach();
        if (!r)
            return r.error();
        Domain& d = **r;
        const int64_t busy = m_world.chance(0.1) ? m_world.draw(0, 20'000'000) : 0;
        qga::TimeSample s;
        s.hostBeforeNs = m_world.clock.realtimeNs();
        m_world.clock.advance(d.rttNs / 2 + busy);
        if (d.ntpStepNs) { // the guest's own NTP steps its clock, between two samples
            d.guestOffsetNs += std::exchange(d.ntpStepNs, 0);
            m_world.log("  " + d.name + "'s NTP stepped its clock to " +
                        formatOffset(d.guestOffsetNs));
        }
        int64_t g = m_world.clock.realtimeNs() + d.guestOffsetNs;
        if (d.tickNs)
            g -= g % d.tickNs;
        s.guestNs = g;
        m_world.clock.advance(d.rttNs - d.rttNs / 2);
        s.hostAfterNs = m_world.clock.realtimeNs();
        return s;
    }

    qga::Expected<void> setTime(int64_t guestNs) override
    {
        // Decided when the request is sent: a change seen after that cannot
        // recall it (what happens during the call happens inside reach()).
        const int64_t hostAtCall = m_world.clock.realtimeNs();
        const World::AtSend rules = m_world.atSend(m_uuid);
        qga::Expected<Domain*> r = reach();
        if (!r)
            return r.error();
        Domain& d = **r;
        // Timed out before it was sent: nothing set.
        if (m_world.chance(0.02)) {
            m_world.clock.advance(int64_t(m_world.agentTimeoutS) * 1'000'000'000);
            return qga::makeError(qga::ErrorKind::Timeout, "timed out before the set was sent");
        }
        m_world.clock.advance(d.setDelayNs + m_world.draw(0, 200'000));
        if (d.setWholeMs)
            guestNs -= guestNs % 1'000'000;
        m_world.guestSet(d, guestNs, hostAtCall, rules);
        m_world.clock.advance(10'000'000); // hwclock -w
        if (d.noHwclock) // qemu-ga >= 9.1's words (the clock moved; the RTC did not)
            return qga::makeError(qga::ErrorKind::AgentError,
                                  "child process has failed to set hardware clock to system "
                                  "time: failed to execute /sbin/hwclock");
        if (m_world.chance(0.02)) { // the reply was lost: it had been set
            m_world.clock.advance(int64_t(m_world.agentTimeoutS) * 1'000'000'000);
            return qga::makeError(qga::ErrorKind::Timeout, "timed out after the set was sent");
        }
        return {};
    }

    qga::Expected<void> setTimeFromRtc() override
    {
        bool forbidden = false; // decided as the request is sent (see setTime)
        if (Domain* before = m_world.find(m_uuid)) {
            bool problem = false;
            const SyncPolicy p = m_world.effectivePolicy(*before, &problem);
            forbidden = (problem || !p.active()) && m_world.forbiddenAtSend(*before);
        }
        qga::Expected<Domain*> r = reach();
        if (!r)
            return r.error();
        Domain& d = **r;
        // The guest reads its RTC: the intended time to the whole second.
        if (forbidden)
            m_world.fail("invariant 1: " + d.name +
                         " was told to read its RTC although its policy says leave it");
        d.guestOffsetNs =
            (d.clock == ClockKind::VariableUtc || d.clock == ClockKind::VariableLocaltime
                 ? d.intendedNs
                 : 0) -
            m_world.draw(0, 999'999'999);
        m_world.clock.advance(10'000'000);
        return {};
    }

private:
    World& m_world;
    std::string m_uuid;
};

} // namespace

qga::Expected<PolicyParse> SimBackend::readPolicy(const std::string& uuid)
{
    Domain* d = m_world.find(uuid);
    if (!d)
        return qga::makeError(qga::ErrorKind::NotRunning, "Domain not found");
    if (m_world.policyReadFails)
        return qga::makeError(qga::ErrorKind::Transport, "cannot read metadata: connection reset");
    PolicyXml x{d->livePolicy, std::nullopt};
    if (d->state != Domain::State::Shutoff && d->persistent)
        x.defined = d->configPolicy;
    const std::optional<QString> edit = definedWatch.editToApply(uuid, x);
    m_world.policySeen[uuid] = x.live;
    if (!edit)
        return x.parse();
    if (m_world.metadataWriteFails) {
        m_world.log("  SetMetadata (live) of " + d->name + " fails");
        return x.parse();
    }
    m_world.log("  daemon makes " + d->name +
                "'s edited persistent policy live: " + edit->toStdString());
    d->livePolicy = *edit;
    definedWatch.seen(uuid, *edit);
    m_world.policySeen[uuid] = *edit;
    m_world.emitEvent(uuid, {EventAction::PolicyChanged, Trigger::PolicyChanged},
                      "metadata-change (daemon's own)", true);
    return parsedPolicyXml(*edit);
}

qga::Expected<bool> SimBackend::isRunning(const std::string& uuid)
{
    if (!m_world.connected)
        return qga::makeError(qga::ErrorKind::Transport, "not connected to libvirt");
    Domain* d = m_world.find(uuid);
    return d && d->state == Domain::State::Running;
}

qga::Expected<std::unique_ptr<qga::GuestAgent>> SimBackend::openAgent(const std::string& uuid)
{
    if (!m_world.find(uuid))
        return qga::makeError(qga::ErrorKind::NotRunning, "Domain not found");
    return std::unique_ptr<qga::GuestAgent>(std::make_unique<SimAgent>(m_world, uuid));
}

qga::Expected<DomainFacts> SimBackend::facts(const std::string& uuid)
{
    Domain* d = m_world.find(uuid);
    if (!d)
        return qga::makeError(qga::ErrorKind::NotRunning, "Domain not found");
    // As LibvirtBackend::facts: the live XML, with the configured clock of a
    // persistent domain.
    auto inactive = [&]() -> std::optional<QString> {
        return d->persistent ? std::optional<QString>(m_world.inactiveXml(*d)) : std::nullopt;
    };
    return clocksync::composeFacts(m_world.liveXml(*d), inactive, m_world.hostUtcOffsetS);
}

// As libvirt answers: later, from the event loop; nothing while disconnected.
void SimHypervisor::list(bool runningOnly, std::function<void(qga::Expected<DomainList>)> fn)
{
    if (!m_connected || m_stopped)
        return;
    if (m_world.failListing) {
        QTimer::singleShot(
            0, this, [fn] { fn(qga::makeError(qga::ErrorKind::Transport, "listing failed")); });
        return;
    }
    DomainList out;
    for (const auto& [uuid, d] : m_world.domains)
        if (d.exists && (!runningOnly || d.state == Domain::State::Running))
            out.emplace_back(uuid, d.name);
    // The listing is libvirt's at the time it was asked; the answer may come
    // after later events (a busy libvirtd): a stale listing.
    const int ms = m_world.chance(0.3) ? int(m_world.draw(1, 3000)) : 0;
    QTimer::singleShot(ms, this, [fn, out] { fn(out); });
}

void SimHypervisor::listRunning(std::function<void(qga::Expected<DomainList>)> fn)
{
    list(true, std::move(fn));
}

void SimHypervisor::listKnown(std::function<void(qga::Expected<DomainList>)> fn)
{
    list(false, std::move(fn));
}

void SimHypervisor::setConnected(bool c)
{
    if (c == m_connected)
        return;
    m_connected = c;
    m_world.connected = c;
    if (c) {
        emit connected();
    } else {
        ++m_reconnects;
        m_world.events.clear(); // what libvirt had not delivered is lost with the connection
        emit disconnected(QStringLiteral("simulated"));
    }
}

void SimHypervisor::deliver(const PendingEvent& e)
{
    if (e.action.kind == EventAction::PolicyChanged)
        if (Domain* d = m_world.find(e.uuid))
            m_world.policySeen[e.uuid] = d->livePolicy; // the daemon is told now
    auto it = m_world.domains.find(e.uuid);
    const std::string name = it == m_world.domains.end() ? std::string() : it->second.name;
    emit domainEvent(QString::fromStdString(e.uuid), QString::fromStdString(name), e.action);
}

} // namespace sim
