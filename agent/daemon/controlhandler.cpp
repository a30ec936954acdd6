// SPDX-License-Identifier: Apache-2.0
// ControlHandler.
#include "controlhandler.h"

#include <algorithm>

namespace clocksync {

using nlohmann::json;

ControlHandler::ControlHandler(DomainTracker& tracker, Hypervisor& hypervisor,
                               const Reporter& reporter, std::function<void()> refresh)
    : m_tracker(tracker), m_hypervisor(hypervisor), m_reporter(reporter),
      m_refresh(std::move(refresh))
{
}

void ControlHandler::handle(const ControlRequest& req, ControlServer::Reply reply)
{
    switch (req.command) {
    case ControlCommand::Ping:
        return reply(controlOk());
    case ControlCommand::Status:
        return reply(statusJson(req.domains));
    case ControlCommand::Metrics: {
        m_refresh();
        json j = controlOk();
        j["text"] = m_reporter.metricsText();
        return reply(j);
    }
    case ControlCommand::Sync:
        return sync(req, std::move(reply));
    }
}

json ControlHandler::statusJson(const std::vector<std::string>& only) const
{
    json j = controlOk();
    j["uri"] = m_hypervisor.uri().toStdString();
    j["connected"] = m_hypervisor.isConnected();
    j["domains"] = json::array();
    for (const DomainStatus& s : m_tracker.status()) {
        if (!only.empty() && std::find(only.begin(), only.end(), s.name) == only.end() &&
            std::find(only.begin(), only.end(), s.uuid) == only.end())
            continue;
        json d = {{"domain", s.name}, {"uuid", s.uuid}, {"state", domainStateName(s.state)}};
        d["agent_connected"] = s.agentConnected ? json(*s.agentConnected) : json(nullptr);
        if (s.last)
            d["last"] = resultToJson(*s.last);
        if (s.queued)
            d["queued"] = std::string(triggerName(*s.queued));
        j["domains"].push_back(d);
    }
    return j;
}

void ControlHandler::sync(const ControlRequest& req, ControlServer::Reply reply)
{
    if (!m_hypervisor.isConnected())
        return reply(
            controlError("not connected to libvirt (" + m_hypervisor.uri().toStdString() + ")"));
    if (req.all == !req.domains.empty())
        return reply(controlError("sync needs domain names or all=true"));
    m_hypervisor.listRunning([this, names = req.domains, all = req.all, tuning = req.tuning,
                              reply](qga::Expected<DomainList> listed) {
        if (!listed)
            return reply(
                controlError("cannot list the running domains: " + listed.error().message));
        const DomainList& running = *listed;
        DomainList chosen;
        for (const std::string& n : names) {
            auto it = std::find_if(running.begin(), running.end(),
                                   [&](const auto& d) { return d.second == n || d.first == n; });
            if (it == running.end())
                return reply(controlError("no running domain named '" + n + "'"));
            chosen.push_back(*it);
        }
        requestSync(all ? running : chosen, tuning, reply);
    });
}

void ControlHandler::requestSync(const DomainList& domains, const RequestTuning& tuning,
                                 ControlServer::Reply reply)
{
    if (domains.empty()) {
        json j = controlOk();
        j["results"] = json::array();
        return reply(j);
    }
    auto p = std::make_shared<PendingSync>();
    p->reply = std::move(reply);
    m_pending.push_back(p);
    for (const auto& [uuid, name] : domains)
        p->waiting[uuid] = m_tracker.trigger(uuid, name, Trigger::Request, false, tuning);
}

void ControlHandler::onResult(const SyncResult& r)
{
    for (auto it = m_pending.begin(); it != m_pending.end();) {
        PendingSync& p = **it;
        const auto w = p.waiting.find(r.uuid);
        if (w != p.waiting.end() && r.generation >= w->second) {
            p.waiting.erase(w);
            p.results.push_back(resultToJson(r));
        }
        if (!p.waiting.empty()) {
            ++it;
            continue;
        }
        json j = controlOk();
        j["results"] = p.results;
        p.reply(j);
        it = m_pending.erase(it);
    }
}

} // namespace clocksync
