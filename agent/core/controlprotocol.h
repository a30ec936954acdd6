// SPDX-License-Identifier: Apache-2.0
// The control socket protocol: JSON lines, versioned.
//   → {"version":1,"command":"status"|"sync"|"metrics"|"ping","domains":[...],"all":false}
//   ← {"version":1,"ok":true,...}  or  {"version":1,"ok":false,"error":"..."}
// Requests are untrusted (any local user may connect until refused): bounded,
// parsed without exceptions.
#pragma once

#include "expected.h"
#include "syncresult.h"

#include <nlohmann/json.hpp>

#include <QString>

#include <string>
#include <vector>

namespace clocksync {

constexpr int kControlVersion = 1;
constexpr std::size_t kMaxControlRequest = 64 * 1024;

enum class ControlCommand { Ping, Status, Metrics, Sync };
const char* controlCommandName(ControlCommand c);

struct ControlRequest
{
    ControlCommand command = ControlCommand::Ping;
    std::vector<std::string> domains;
    bool all = false;
    RequestTuning tuning; // sync: the CLI's --samples/--attempts
};

qga::Expected<ControlRequest> parseControlRequest(std::string_view line);
nlohmann::json controlError(const std::string& message);
nlohmann::json controlOk();

// Measurement and SyncResult as JSON (control socket and CLI --json share them).
nlohmann::json measurementToJson(const Measurement& m);
nlohmann::json resultToJson(const SyncResult& r);
SyncResult resultFromJson(const nlohmann::json& j);

// The daemon's control socket for a libvirt URI: the user's runtime dir for a
// non-root session daemon, else /run/virt-clocksync/control.sock.
QString defaultControlPath(const QString& uri);

} // namespace clocksync
