// SPDX-License-Identifier: Apache-2.0
// The CLI's side of the daemon's control socket: one request, one reply line.
#pragma once

#include <nlohmann/json.hpp>

#include <QString>

namespace clocksync::cli {

struct DaemonReply
{
    bool reachable = false; // false: not connected (see absent)
    // No daemon listens there (no socket, or nobody accepts): the CLI may act
    // itself. Any other failure (permission denied) is not an absence: acting
    // beside a running daemon would make two syncers.
    bool absent = false;
    nlohmann::json reply;
    QString error; // empty: reply is {"ok":true,...}
};

// The control socket for an explicit --control, else the config's
// control-socket, else the default for the URI the CLI would use.
QString controlPath(const QString& explicitPath, const QString& configured, const QString& uri);
nlohmann::json daemonRequest(const char* command);
DaemonReply callDaemon(const QString& path, const nlohmann::json& request, int timeoutMs);
// An unreachable daemon's error, with the hint an operator needs.
QString unreachable(const DaemonReply& r);

} // namespace clocksync::cli
