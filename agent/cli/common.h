// SPDX-License-Identifier: Apache-2.0
// What every CLI command gets (Invocation) and shares: output, exit codes,
// libvirt lookups. The command table is in cli.cpp; each command's handler
// lives with its kind (cmd_*.cpp).
#pragma once

#include "cli.h"
#include "config.h"
#include "libvirthandles.h"
#include "syncplan.h"
#include "syncresult.h"

#include <nlohmann/json.hpp>

#include <QCommandLineParser>
#include <QString>
#include <QStringList>

#include <memory>

namespace clocksync::cli {

struct Invocation
{
    QString uri;     // explicit -c/--connect, else empty (libvirt's default)
    QString control; // the daemon's control socket
    bool json = false;
    DaemonConfig config;                         // /etc config and drop-ins: the effective defaults
    QStringList args;                            // positional arguments after the command
    const QCommandLineParser* options = nullptr; // the command's own options

    bool isSet(const char* name) const { return options->isSet(QLatin1String(name)); }
    QString value(const char* name) const { return options->value(QLatin1String(name)); }
};

int cmdSync(const Invocation& in);
int cmdStatus(const Invocation& in);
int cmdMetrics(const Invocation& in);
int cmdOffset(const Invocation& in);
int cmdCheckHost(const Invocation& in);
int cmdCheckGuest(const Invocation& in);
int cmdPolicy(const Invocation& in);

void printJson(const nlohmann::json& j);
// Prints "virt-clocksync: message" to stderr and returns code.
int fail(int code, const QString& message);
// The exit code for an error, and for a sync's result: the one mapping both
// the direct and the daemon path use.
int exitFor(const qga::Error& e);
int exitFor(const SyncResult& r);
// status: a guest's last result. 0 when its clock is fine -- or when a sync
// was cancelled because the guest paused or stopped (it is looked at when it
// runs again: not a problem); 1 left alone for a policy or XML problem (to
// fix); 3 failed or drifted (its clock may be wrong).
int statusExitFor(const SyncResult& last);

struct Connection
{
    qga::ConnectHandle conn;
    QString error;
};
Connection openLibvirt(const QString& uri);
std::shared_ptr<virDomain> lookupDomain(virConnectPtr conn, const QString& name, QString& error);
// Connects and looks the domain up; 0, or the exit code after printing why.
int openDomain(const QString& uri, const QString& name, Connection& c,
               std::shared_ptr<virDomain>& dom);
// What a sync of this domain does -- its policy (the config's defaults with
// the domain's metadata) and intended time (its live XML), or why it is left
// alone -- decided by the core's planSync, as the daemon decides.
SyncPlan planFor(const DaemonConfig& config, virDomainPtr dom, Trigger t = Trigger::Request);
// N from a --samples/--attempts style option in 1..max; 0 if not given, -1 if invalid.
int countOption(const Invocation& in, const char* name, int max);

} // namespace clocksync::cli
