// SPDX-License-Identifier: Apache-2.0
// Control protocol codec.
#include "controlprotocol.h"

#include <QtGlobal>

#include <unistd.h>

namespace clocksync {

using nlohmann::json;

static qga::Error bad(std::string m)
{
    return qga::makeError(qga::ErrorKind::Protocol, std::move(m));
}

const char* controlCommandName(ControlCommand c)
{
    switch (c) {
    case ControlCommand::Ping:
        return "ping";
    case ControlCommand::Status:
        return "status";
    case ControlCommand::Metrics:
        return "metrics";
    case ControlCommand::Sync:
        return "sync";
    }
    return "ping";
}

qga::Expected<ControlRequest> parseControlRequest(std::string_view line)
{
    if (line.size() > kMaxControlRequest)
        return bad("request exceeds 64 KiB");
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return bad("request is not a JSON object");
    auto v = j.find("version");
    if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kControlVersion)
        return bad("unsupported or missing protocol version (this daemon speaks 1)");
    auto c = j.find("command");
    if (c == j.end() || !c->is_string())
        return bad("request has no command");
    ControlRequest r;
    const std::string command = c->get<std::string>();
    bool known = false;
    for (ControlCommand k : {ControlCommand::Ping, ControlCommand::Status, ControlCommand::Metrics,
                             ControlCommand::Sync})
        if (command == controlCommandName(k)) {
            r.command = k;
            known = true;
        }
    if (!known)
        return bad("unknown command '" + command + "'");
    if (auto d = j.find("domains"); d != j.end()) {
        if (!d->is_array() || d->size() > 4096)
            return bad("'domains' must be an array of names");
        for (const json& n : *d) {
            if (!n.is_string() || n.get<std::string>().empty() ||
                n.get<std::string>().size() > 1024)
                return bad("'domains' must be an array of names");
            r.domains.push_back(n.get<std::string>());
        }
    }
    if (auto a = j.find("all"); a != j.end()) {
        if (!a->is_boolean())
            return bad("'all' must be true or false");
        r.all = a->get<bool>();
    }
    // The CLI's --samples/--attempts, for this request's sync only.
    struct Count
    {
        const char* key;
        int max;
        int RequestTuning::*member;
    };
    for (const Count& k : {Count{"samples", 1000, &RequestTuning::samples},
                           Count{"attempts", 10, &RequestTuning::attempts}}) {
        auto n = j.find(k.key);
        if (n == j.end())
            continue;
        if (!n->is_number_integer() || n->get<int64_t>() < 1 || n->get<int64_t>() > k.max)
            return bad(std::string("'") + k.key + "' must be 1.." + std::to_string(k.max));
        r.tuning.*k.member = int(n->get<int64_t>());
    }
    return r;
}

json controlError(const std::string& message)
{
    return {{"version", kControlVersion}, {"ok", false}, {"error", message}};
}

json controlOk()
{
    return {{"version", kControlVersion}, {"ok", true}};
}

json measurementToJson(const Measurement& m)
{
    return {{"offset_ns", m.offsetNs},
            {"uncertainty_ns", m.uncertaintyNs},
            {"rtt_ns", m.rttNs},
            {"samples", m.samples}};
}

static Measurement measurementFromJson(const json& j)
{
    Measurement m;
    m.offsetNs = j.value("offset_ns", int64_t(0));
    m.uncertaintyNs = j.value("uncertainty_ns", int64_t(0));
    m.rttNs = j.value("rtt_ns", int64_t(0));
    m.samples = j.value("samples", 0);
    return m;
}

json resultToJson(const SyncResult& r)
{
    json j = {{"domain", r.domain},
              {"uuid", r.uuid},
              {"trigger", triggerName(r.trigger)},
              {"outcome", outcomeName(r.outcome)},
              {"attempts", r.attempts},
              {"transport", r.transport},
              {"mode", syncModeName(r.mode)},
              {"latency_ns", r.latencyNs},
              {"finished_at_ns", r.finishedAtNs}};
    if (r.coarseLatencyNs > 0)
        j["coarse_latency_ns"] = r.coarseLatencyNs;
    if (r.remeasures > 0)
        j["remeasures"] = r.remeasures;
    if (r.before)
        j["before"] = measurementToJson(*r.before);
    if (r.after)
        j["after"] = measurementToJson(*r.after);
    if (r.error)
        j["error"] = {{"kind", qga::errorKindName(r.error->kind)}, {"message", r.error->message}};
    if (!r.note.empty())
        j["note"] = r.note;
    if (r.configProblem)
        j["config_problem"] = true;
    if (r.nextBootPolicy)
        j["next_boot_policy"] = *r.nextBootPolicy;
    return j;
}

SyncResult resultFromJson(const json& j)
{
    SyncResult r;
    if (!j.is_object())
        return r;
    auto str = [&](const char* k) {
        auto it = j.find(k);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    r.domain = str("domain");
    r.uuid = str("uuid");
    r.trigger = triggerFromName(str("trigger")).value_or(Trigger::Request);
    const std::string o = str("outcome");
    for (Outcome x : {Outcome::InSync, Outcome::Synced, Outcome::Approximate, Outcome::Failed,
                      Outcome::Cancelled, Outcome::Skipped, Outcome::Drifted})
        if (o == outcomeName(x))
            r.outcome = x;
    auto num = [&](const char* k) {
        auto it = j.find(k);
        return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t(0);
    };
    r.attempts = int(num("attempts"));
    r.transport = str("transport");
    r.mode = parseMode(QString::fromStdString(str("mode"))).value_or(SyncMode::Host);
    r.latencyNs = num("latency_ns");
    r.coarseLatencyNs = num("coarse_latency_ns");
    r.remeasures = int(num("remeasures"));
    r.finishedAtNs = num("finished_at_ns");
    r.note = str("note");
    if (auto c = j.find("config_problem"); c != j.end() && c->is_boolean())
        r.configProblem = c->get<bool>();
    if (auto n = j.find("next_boot_policy"); n != j.end() && n->is_string())
        r.nextBootPolicy = n->get<std::string>();
    if (auto b = j.find("before"); b != j.end() && b->is_object())
        r.before = measurementFromJson(*b);
    if (auto a = j.find("after"); a != j.end() && a->is_object())
        r.after = measurementFromJson(*a);
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
        auto m = e->find("message");
        auto k = e->find("kind");
        const std::optional<qga::ErrorKind> kind =
            k != e->end() && k->is_string() ? qga::errorKindFromName(k->get<std::string>())
                                            : std::nullopt;
        r.error = qga::makeError(kind.value_or(qga::ErrorKind::Internal),
                                 m != e->end() && m->is_string() ? m->get<std::string>() : "error");
    }
    return r;
}

QString defaultControlPath(const QString& uri)
{
    if (uri.contains("/session") && ::geteuid() != 0) {
        // Never a shared directory like /tmp: another user could take the name first.
        QString runtime = qEnvironmentVariable("XDG_RUNTIME_DIR");
        if (runtime.isEmpty())
            runtime = QStringLiteral("/run/user/%1").arg(::geteuid());
        return runtime + "/virt-clocksync/control.sock";
    }
    return "/run/virt-clocksync/control.sock";
}

} // namespace clocksync
