// SPDX-License-Identifier: Apache-2.0
// The daemon's answers on the control socket: one handler per command of the
// protocol (a switch over ControlCommand, so a new command without a handler
// does not compile under -Werror), the status JSON, and the fan-in of sync
// requests: a request is answered when every domain it named has a result
// from a job that started after it.
#pragma once

#include "controlprotocol.h"
#include "controlserver.h"
#include "domaintracker.h"
#include "hypervisor.h"
#include "reporter.h"

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace clocksync {

class ControlHandler
{
public:
    // refresh: brings the gauges up to date before metrics are rendered.
    ControlHandler(DomainTracker& tracker, Hypervisor& hypervisor, const Reporter& reporter,
                   std::function<void()> refresh);

    void handle(const ControlRequest& req, ControlServer::Reply reply);
    // Every result passes here: waiting sync requests may be complete.
    void onResult(const SyncResult& r);

    nlohmann::json statusJson(const std::vector<std::string>& only) const;

private:
    void sync(const ControlRequest& req, ControlServer::Reply reply);
    void requestSync(const DomainList& domains, const RequestTuning& tuning,
                     ControlServer::Reply reply);

    DomainTracker& m_tracker;
    Hypervisor& m_hypervisor;
    const Reporter& m_reporter;
    std::function<void()> m_refresh;
    struct PendingSync
    {
        // uuid -> ticket: only a result of a job that started after the
        // request (generation >= ticket) answers it, never an earlier one.
        std::map<std::string, uint64_t> waiting;
        nlohmann::json results = nlohmann::json::array();
        ControlServer::Reply reply;
    };
    std::vector<std::shared_ptr<PendingSync>> m_pending;
};

} // namespace clocksync
