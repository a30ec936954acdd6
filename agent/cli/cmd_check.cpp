// SPDX-License-Identifier: Apache-2.0
// Read-only checks: check-host, check-guest. Each probes into JSON first and
// prints from that, so --json and the text show the same facts.
#include "common.h"
#include "controlprotocol.h"
#include "domainxml.h"
#include "guesthealth.h"
#include "hostcheck.h"
#include "libvirtbackend.h"

#include "libvirtagent.h"
#include "syncengine.h"
#include "syncrules.h"

#include <cstdio>

namespace clocksync::cli {

using nlohmann::json;

namespace {

const char* yn(bool b)
{
    return b ? "yes" : "NO";
}

json hostJson(const HostCheck& c)
{
    json j = {{"constant_tsc", c.constantTsc},
              {"nonstop_tsc", c.nonstopTsc},
              {"clocksource", c.clocksource.toStdString()},
              {"estimated_error_us", c.estimatedErrorUs},
              {"max_error_us", c.maxErrorUs},
              {"advice", json::array()}};
    j["ntp_synchronised"] = c.ntpSynchronised ? json(*c.ntpSynchronised) : json(nullptr);
    j["libvirt_guests_sync_time"] = !c.libvirtGuestsSyncTime.isEmpty();
    for (const QString& a : c.advice)
        j["advice"].push_back(a.toStdString());
    return j;
}

// What check-guest found, and its exit code.
struct GuestProbe
{
    json j;
    int code = ExitOk;
};

// Channel (from the live XML), agent answering, commands available, offset.
GuestProbe probeAgent(const Invocation& in, const std::shared_ptr<virDomain>& dom)
{
    GuestProbe p{{{"domain", in.args[0].toStdString()}}};
    const qga::Expected<DomainFacts> facts = LibvirtBackend::facts(dom.get());
    if (!facts) {
        p.j["domain_xml_error"] = facts.error().message;
        p.code = ExitFailure;
        return p;
    }
    p.j["agent_channel"] = facts->agentChannel;
    p.j["agent_connected"] = facts->agentConnected ? json(*facts->agentConnected) : json(nullptr);
    const SyncPlan plan = planFor(in.config, dom.get());
    p.j["synced_by_daemon"] = !plan.skip;
    if (plan.skip)
        p.j["left_alone"] = *plan.skip;
    else
        p.j["intended_offset_ns"] = plan.target.shiftNs;
    if (plan.configProblem)
        p.code = ExitFailure;
    // guest-info has no typed libvirt API: this one call goes through
    // virDomainQemuAgentCommand (libvirt marks the domain "custom-ga-command").
    qga::RawLibvirtAgent raw(dom, qga::SystemClock::instance(), in.config.agentTimeoutSeconds);
    qga::Expected<qga::AgentInfo> info = raw.info();
    if (!info) {
        p.j["agent_error"] = info.error().message;
        p.code = exitFor(info.error());
        return p;
    }
    p.j["agent_version"] = info->version;
    p.j["guest_set_time"] = info->supports("guest-set-time");
    p.j["guest_get_time"] = info->supports("guest-get-time");
    if (!info->supports("guest-set-time"))
        p.code = ExitAgentUnavailable;
    // Against the time the guest is meant to run at (host + adjustment for
    // a variable clock), as sync, offset and the daemon measure it: before,
    // a correct +3600 s guest read +3600 s here and exited 3. A tick-clock
    // guest (Windows) is within tolerance to its tick.
    std::unique_ptr<qga::GuestAgent> agent = std::make_unique<qga::LibvirtAgent>(
        dom, qga::SystemClock::instance(), in.config.agentTimeoutSeconds);
    if (!plan.skip)
        agent = aimedAt(std::move(agent), plan.target);
    if (auto m = measure(*agent, in.config.policy.samples, 0, &qga::SystemClock::instance())) {
        noBetterThanItsStep(*m, m->granularityNs);
        p.j["offset"] = measurementToJson(*m);
        if (!inTolerance(*m, effectiveLimits(plan.policy, false, m->granularityNs)) &&
            p.code == ExitOk)
            p.code = ExitOutOfTolerance;
    }
    return p;
}

// --deep: the guest's own timekeeping, only if its policy allows guest-exec.
json probeDeep(const Invocation& in, const std::shared_ptr<virDomain>& dom)
{
    const SyncPlan plan = planFor(in.config, dom.get());
    if (plan.configProblem || !plan.policy.allowGuestExec)
        return {{"skipped",
                 "not checked: the guest's clocksource, ptp_kvm and /dev/ptp*, and its time daemon "
                 "(chronyd/ntpd/timesyncd) and sync state; these need guest-exec, which this "
                 "domain's policy does not allow (virt-clocksync policy " +
                     in.args[0].toStdString() + " --set guest-exec=yes)"}};
    qga::Expected<GuestHealth> h = probeGuestHealth(dom, 10);
    if (!h)
        return {{"skipped", "not checked: guest-exec failed: " + h.error().message}};
    json d = {{"advice", json::array()}};
    for (auto it = h->facts.begin(); it != h->facts.end(); ++it) {
        json vals = json::array();
        for (const QString& v : it.value())
            vals.push_back(v.toStdString());
        d[it.key().toStdString()] = vals;
    }
    for (const QString& a : h->advice)
        d["advice"].push_back(a.toStdString());
    return d;
}

std::string joined(const json& d, const char* key)
{
    std::string out;
    for (const json& v : d.value(key, json::array()))
        out += (out.empty() ? "" : ", ") + v.get<std::string>();
    return out;
}

void printDeep(const json& d)
{
    if (d.contains("skipped")) {
        std::printf("deep checks               %s\n", d["skipped"].get<std::string>().c_str());
        return;
    }
    const std::string ptp = joined(d, "ptp_device");
    const std::string daemon = joined(d, "time_daemon");
    std::printf("guest clocksource         %s (available: %s)\n", joined(d, "clocksource").c_str(),
                joined(d, "available").c_str());
    std::printf("ptp_kvm loaded            %s%s\n", joined(d, "ptp_kvm").c_str(),
                ptp.empty() ? "" : (" (" + ptp + ")").c_str());
    std::printf("time daemon               %s\n", daemon.empty() ? "none" : daemon.c_str());
    const std::string state = joined(d, "ntp_synchronized") + " " + joined(d, "chrony_leap") + " " +
                              joined(d, "chrony_offset");
    if (state != "  ")
        std::printf("guest sync state          %s\n", state.c_str());
    for (const json& a : d["advice"])
        std::printf("advice: %s\n", a.get<std::string>().c_str());
}

void printGuest(const json& j)
{
    if (j.contains("domain_xml_error")) {
        std::printf("domain XML                %s\n",
                    j["domain_xml_error"].get<std::string>().c_str());
        return;
    }
    std::printf("agent channel configured  %s\n", yn(j["agent_channel"].get<bool>()));
    if (j.contains("left_alone"))
        std::printf("synced by the daemon      no: %s\n",
                    j["left_alone"].get<std::string>().c_str());
    else
        std::printf("synced by the daemon      yes, to host UTC %s\n",
                    formatOffset(j.value("intended_offset_ns", int64_t(0))).c_str());
    std::printf("agent connected           %s\n",
                j["agent_connected"].is_null() ? "unknown" : yn(j["agent_connected"].get<bool>()));
    if (j.contains("agent_error")) {
        std::printf("agent                     unavailable: %s\n",
                    j["agent_error"].get<std::string>().c_str());
    } else {
        const bool set = j["guest_set_time"].get<bool>();
        std::printf("agent version             %s\n",
                    j["agent_version"].get<std::string>().c_str());
        std::printf("guest-get-time available  %s\n", yn(j["guest_get_time"].get<bool>()));
        std::printf("guest-set-time available  %s%s\n", yn(set),
                    set ? "" : " (blocked or unknown: only --sync from RTC, if at all)");
    }
    if (j.contains("offset")) {
        std::printf("round trip (min)          %s\n",
                    formatOffset(j["offset"]["rtt_ns"].get<int64_t>()).substr(1).c_str());
        std::printf("offset                    %s%s\n",
                    formatOffset(j["offset"]["offset_ns"].get<int64_t>()).c_str(),
                    j.value("intended_offset_ns", int64_t(0)) != 0
                        ? " (from the intended time: host UTC + the adjustment)"
                        : "");
    }
    if (!j["agent_channel"].get<bool>())
        std::printf(
            "advice: add <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>"
            "</channel> to the domain and install qemu-guest-agent in the guest\n");
    if (j.contains("deep"))
        printDeep(j["deep"]);
}

} // namespace

int cmdCheckHost(const Invocation& in)
{
    const HostCheck c = checkHost();
    if (in.json) {
        printJson(hostJson(c));
        return c.advice.isEmpty() ? ExitOk : ExitOutOfTolerance;
    }
    std::printf("constant_tsc        %s\n", yn(c.constantTsc));
    std::printf("nonstop_tsc         %s\n", yn(c.nonstopTsc));
    std::printf("clocksource         %s (available: %s)\n", qPrintable(c.clocksource),
                qPrintable(c.availableClocksources.join(' ')));
    std::printf("NTP/PTP synchronised %s", c.ntpSynchronised ? yn(*c.ntpSynchronised) : "unknown");
    if (c.ntpSynchronised && *c.ntpSynchronised)
        std::printf(" (estimated error %lld us, maximum %lld us)", c.estimatedErrorUs,
                    c.maxErrorUs);
    std::printf("\n");
    for (const QString& a : c.advice)
        std::printf("advice: %s\n", qPrintable(a));
    if (c.advice.isEmpty())
        std::printf("host timekeeping looks right\n");
    return c.advice.isEmpty() ? ExitOk : ExitOutOfTolerance;
}

int cmdCheckGuest(const Invocation& in)
{
    Connection c;
    std::shared_ptr<virDomain> dom;
    if (int code = openDomain(in.uri, in.args[0], c, dom))
        return code;
    GuestProbe p = probeAgent(in, dom);
    if (in.isSet("deep"))
        p.j["deep"] = probeDeep(in, dom);
    if (in.json)
        printJson(p.j);
    else
        printGuest(p.j);
    return p.code;
}

} // namespace clocksync::cli
