// SPDX-License-Identifier: Apache-2.0
// Commands answered by the running daemon: status, metrics.
#include "common.h"
#include "controlclient.h"
#include "controlprotocol.h"

#include "clock.h"

#include <cstdio>

namespace clocksync::cli {

using nlohmann::json;

namespace {

std::string ago(int64_t finishedAtNs)
{
    if (!finishedAtNs)
        return "-";
    const int64_t s = (qga::SystemClock::instance().realtimeNs() - finishedAtNs) / 1'000'000'000;
    if (s < 120)
        return std::to_string(s) + " s ago";
    if (s < 7200)
        return std::to_string(s / 60) + " min ago";
    return std::to_string(s / 3600) + " h ago";
}

// "before -> after, N sets, error or note".
std::string detailOf(const SyncResult& last)
{
    std::string detail = last.before ? formatOffset(last.before->offsetNs) : "not measured";
    if (last.after && last.attempts > 0)
        detail += " -> " + formatOffset(last.after->offsetNs);
    detail += ", " + std::to_string(last.attempts) + " set" + (last.attempts == 1 ? "" : "s");
    if (last.error)
        detail += ", " + last.error->message;
    else if (!last.note.empty())
        detail += ", " + last.note;
    if (last.nextBootPolicy)
        detail += "; another policy is defined, pending until the next boot (virt-clocksync "
                  "policy " +
                  last.domain + ")";
    return detail;
}

// A row's exit code (statusExitFor; no result yet: 0).
int rowCode(const json& d)
{
    return d.contains("last") ? statusExitFor(resultFromJson(d["last"])) : ExitOk;
}

// One row of the status table; the row's exit code.
int printStatusRow(const json& d)
{
    const bool has = d.contains("last");
    const SyncResult last = has ? resultFromJson(d["last"]) : SyncResult{};
    std::printf("%-20s %-18s %-12s %-18s %-12s %s\n", d.value("domain", std::string()).c_str(),
                d.value("state", std::string()).c_str(), has ? ago(last.finishedAtNs).c_str() : "-",
                has ? std::string(triggerName(last.trigger)).c_str() : "-",
                has ? outcomeName(last.outcome) : "-", has ? detailOf(last).c_str() : "-");
    return rowCode(d);
}

} // namespace

int cmdStatus(const Invocation& in)
{
    json req = daemonRequest("status");
    req["domains"] = json::array();
    for (const QString& d : in.args)
        req["domains"].push_back(d.toStdString());
    const DaemonReply r = callDaemon(in.control, req, 10000);
    if (!r.error.isEmpty())
        return fail(ExitConnection, unreachable(r));
    const json& doms = r.reply["domains"];
    if (in.json) { // the same exit code as the text form
        printJson(r.reply);
        int code = doms.is_array() && (!doms.empty() || in.args.isEmpty()) ? ExitOk : ExitFailure;
        for (const json& d : doms.is_array() ? doms : json::array())
            code = std::max(code, rowCode(d));
        return code;
    }
    std::printf("daemon: %s, libvirt %s\n",
                r.reply.value("connected", false) ? "connected" : "NOT connected",
                r.reply.value("uri", std::string()).c_str());
    if (!doms.is_array() || doms.empty()) {
        std::printf("no guests tracked yet\n");
        return in.args.isEmpty() ? ExitOk : ExitFailure;
    }
    std::printf("%-20s %-18s %-12s %-18s %-12s %s\n", "DOMAIN", "STATE", "WHEN", "TRIGGER",
                "RESULT", "OFFSET BEFORE -> AFTER, SETS, ERROR");
    int code = ExitOk;
    for (const json& d : doms)
        code = std::max(code, printStatusRow(d));
    return code;
}

int cmdMetrics(const Invocation& in)
{
    const DaemonReply r = callDaemon(in.control, daemonRequest("metrics"), 10000);
    if (!r.error.isEmpty())
        return fail(ExitConnection, unreachable(r));
    std::fputs(r.reply.value("text", std::string()).c_str(), stdout);
    return ExitOk;
}

} // namespace clocksync::cli
