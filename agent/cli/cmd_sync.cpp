// SPDX-License-Identifier: Apache-2.0
// Commands that measure or set guest clocks: sync, offset.
#include "common.h"
#include "controlclient.h"
#include "controlprotocol.h"

#include "libvirtagent.h"
#include "socketagent.h"
#include "syncengine.h"
#include "syncrules.h"

#include <cstdio>
#include <optional>

namespace clocksync::cli {

using nlohmann::json;

namespace {

// Through the daemon (it serialises with its own syncs); nullopt if none runs.
std::optional<int> syncViaDaemon(const Invocation& in, bool all, const RequestTuning& tuning)
{
    json req = daemonRequest("sync");
    req["all"] = all;
    if (tuning.samples > 0)
        req["samples"] = tuning.samples;
    if (tuning.attempts > 0)
        req["attempts"] = tuning.attempts;
    req["domains"] = json::array();
    for (const QString& a : in.args)
        req["domains"].push_back(a.toStdString());
    const DaemonReply r = callDaemon(in.control, req, 180'000);
    if (r.absent)
        return std::nullopt;
    if (!r.reachable) // a daemon may run: never a second syncer beside it
        return fail(ExitConnection, unreachable(r));
    if (!r.error.isEmpty())
        return fail(ExitFailure, r.error);
    int worst = ExitOk;
    for (const json& jr : r.reply["results"]) {
        const SyncResult res = resultFromJson(jr);
        if (!in.json)
            std::printf("%s: %s (via virt-clocksyncd)\n", res.domain.c_str(),
                        describe(res).c_str());
        worst = std::max(worst, exitFor(res));
    }
    if (in.json)
        printJson(r.reply["results"]);
    return worst;
}

// The running domains; nullopt if libvirt could not list them (never "none").
std::optional<QStringList> runningDomains(virConnectPtr conn)
{
    QStringList names;
    virDomainPtr* doms = nullptr;
    const int n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_RUNNING);
    if (n < 0)
        return std::nullopt;
    for (int i = 0; i < n; ++i) {
        names << QString::fromUtf8(virDomainGetName(doms[i]));
        virDomainFree(doms[i]);
    }
    std::free(doms);
    return names;
}

// Decided as the daemon decides (planSync): a guest the daemon would leave
// alone is left alone, and a guest meant to run at host + adjustment is set there.
SyncResult syncOne(const Invocation& in, const std::shared_ptr<virDomain>& dom, const QString& name,
                   const RequestTuning& tuning)
{
    SyncRequest req;
    req.trigger = Trigger::Request;
    req.triggerMonoNs = qga::SystemClock::instance().monotonicNs();
    const SyncPlan plan = planFor(in.config, dom.get());
    if (plan.skip) {
        SyncResult r;
        r.domain = name.toStdString();
        r.outcome = Outcome::Skipped;
        r.note = *plan.skip;
        r.configProblem = plan.configProblem;
        return r;
    }
    req.policy = plan.policy;
    tuning.applyTo(req.policy);
    req.stillRunning = [d = dom.get()] {
        int state = 0, reason = 0;
        return virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING;
    };
    const std::unique_ptr<qga::GuestAgent> agent =
        aimedAt(std::make_unique<qga::LibvirtAgent>(dom, qga::SystemClock::instance(),
                                                    in.config.agentTimeoutSeconds),
                plan.target);
    DelayModel delay;
    SyncResult r = runSync(*agent, qga::SystemClock::instance(), req, delay);
    r.domain = name.toStdString();
    noteTarget(r, plan.target);
    return r;
}

int syncDirect(const Invocation& in, bool all, const RequestTuning& tuning)
{
    Connection c = openLibvirt(in.uri);
    if (!c.conn)
        return fail(ExitConnection, c.error);
    const std::optional<QStringList> listed =
        all ? runningDomains(c.conn.get()) : std::optional<QStringList>(in.args);
    if (!listed)
        return fail(
            ExitConnection,
            "cannot list the running domains: " +
                QString::fromStdString(qga::lastLibvirtError("virConnectListAllDomains").message));
    const QStringList& names = *listed;
    int worst = ExitOk;
    json out = json::array();
    for (const QString& name : names) {
        QString err;
        auto dom = lookupDomain(c.conn.get(), name, err);
        if (!dom) {
            worst = std::max(worst, fail(ExitFailure, err));
            continue;
        }
        const SyncResult r = syncOne(in, dom, name, tuning);
        if (in.json)
            out.push_back(resultToJson(r));
        else
            std::printf("%s: %s\n", qPrintable(name), describe(r).c_str());
        worst = std::max(worst, exitFor(r));
    }
    if (in.json)
        printJson(out);
    return worst;
}

} // namespace

int cmdSync(const Invocation& in)
{
    const int samples = countOption(in, "samples", 1000);
    const int attempts = countOption(in, "attempts", 10);
    if (samples < 0)
        return fail(ExitUsage, "--samples takes 1..1000");
    if (attempts < 0)
        return fail(ExitUsage, "--attempts takes 1..10");
    const bool all = in.isSet("all");
    if (all == !in.args.isEmpty())
        return fail(ExitUsage, "sync takes DOMAIN... or --all (see virt-clocksync help sync)");
    // A running daemon does the sync (never a second one beside its own);
    // without one, this process does it, deciding as the daemon would.
    const RequestTuning tuning{samples, attempts};
    if (std::optional<int> code = syncViaDaemon(in, all, tuning))
        return *code;
    return syncDirect(in, all, tuning);
}

int cmdOffset(const Invocation& in)
{
    int samples = countOption(in, "samples", 1000);
    if (samples < 0)
        return fail(ExitUsage, "--samples takes 1..1000");
    samples = samples ? samples : in.config.policy.samples;
    const QString name = in.args[0];
    std::unique_ptr<qga::GuestAgent> agent;
    SyncPolicy policy = in.config.policy;
    std::string target; // what the offset is relative to, when not host UTC
    Connection c;
    if (in.isSet("socket")) {
        agent = std::make_unique<qga::SocketAgent>(in.value("socket").toStdString(),
                                                   qga::SystemClock::instance());
    } else {
        std::shared_ptr<virDomain> dom;
        if (int code = openDomain(in.uri, name, c, dom))
            return code;
        const SyncPlan plan = planFor(in.config, dom.get());
        policy = plan.policy;
        agent = std::make_unique<qga::LibvirtAgent>(dom, qga::SystemClock::instance(),
                                                    in.config.agentTimeoutSeconds);
        // Against the time the guest is meant to run at (host + adjustment
        // for a variable clock), as sync and the daemon measure it.
        if (!plan.skip) {
            agent = aimedAt(std::move(agent), plan.target);
            target = plan.target.note;
        }
    }
    qga::Expected<Measurement> m = measure(*agent, samples, 0, &qga::SystemClock::instance());
    if (!m)
        return fail(exitFor(m.error()),
                    QStringLiteral("%1: %2").arg(name, QString::fromStdString(m.error().message)));
    noBetterThanItsStep(*m, m->granularityNs);
    // A guest clock that ticks (Windows) is within tolerance to its tick.
    const bool within = inTolerance(*m, effectiveLimits(policy, false, m->granularityNs));
    if (in.json) {
        json j = measurementToJson(*m);
        j["domain"] = name.toStdString();
        j["transport"] = agent->transport();
        j["within_tolerance"] = within;
        if (!target.empty())
            j["target"] = target;
        printJson(j);
    } else {
        std::printf(
            "%s: offset %s (+/-%s, min RTT %s over %d samples, via %s)\n", qPrintable(name),
            formatOffset(m->offsetNs).c_str(), formatOffset(m->uncertaintyNs).substr(1).c_str(),
            formatOffset(m->rttNs).substr(1).c_str(), m->samples, agent->transport().c_str());
        if (!target.empty())
            std::printf("  %s\n", target.c_str());
    }
    return within ? ExitOk : ExitOutOfTolerance;
}

} // namespace clocksync::cli
