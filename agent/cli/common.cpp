// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the CLI's commands.
#include "common.h"

#include "libvirtbackend.h"

#include <libvirt/virterror.h>

#include <cstdio>

namespace clocksync::cli {

void printJson(const nlohmann::json& j)
{
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int fail(int code, const QString& message)
{
    std::fprintf(stderr, "virt-clocksync: %s\n", qPrintable(message));
    return code;
}

int exitFor(const qga::Error& e)
{
    switch (e.kind) {
    case qga::ErrorKind::AgentUnavailable:
    case qga::ErrorKind::Unsupported:
    case qga::ErrorKind::CommandDisabled:
    case qga::ErrorKind::CommandNotFound:
        return ExitAgentUnavailable;
    case qga::ErrorKind::Transport:
        return ExitConnection;
    case qga::ErrorKind::BadClock:
        return ExitOutOfTolerance;
    default:
        return ExitFailure;
    }
}

int exitFor(const SyncResult& r)
{
    if (r.ok())
        return ExitOk;
    if (r.error)
        return exitFor(*r.error);
    if (r.outcome == Outcome::Failed || r.outcome == Outcome::Cancelled)
        return ExitFailure;
    return ExitOutOfTolerance; // measured, not corrected (drift watch)
}

int statusExitFor(const SyncResult& last)
{
    if (last.configProblem)
        return ExitFailure;
    return last.ok() || last.outcome == Outcome::Cancelled ? ExitOk : ExitOutOfTolerance;
}

Connection openLibvirt(const QString& uri)
{
    Connection c;
    const QByteArray u = uri.toUtf8();
    c.conn.reset(virConnectOpen(uri.isEmpty() ? nullptr : u.constData()));
    if (!c.conn) {
        virErrorPtr e = virGetLastError();
        c.error = QStringLiteral("cannot connect to libvirt%1: %2")
                      .arg(uri.isEmpty() ? QString() : " at " + uri,
                           QString::fromUtf8(e && e->message ? e->message : "unknown error"));
    }
    return c;
}

std::shared_ptr<virDomain> lookupDomain(virConnectPtr conn, const QString& name, QString& error)
{
    const QByteArray n = name.toUtf8();
    virDomainPtr d = virDomainLookupByName(conn, n.constData());
    if (!d)
        d = virDomainLookupByUUIDString(conn, n.constData());
    if (!d) {
        error = QStringLiteral("no domain named '%1'").arg(name);
        return nullptr;
    }
    return std::shared_ptr<virDomain>(d, [](virDomainPtr p) { virDomainFree(p); });
}

int openDomain(const QString& uri, const QString& name, Connection& c,
               std::shared_ptr<virDomain>& dom)
{
    c = openLibvirt(uri);
    if (!c.conn)
        return fail(ExitConnection, c.error);
    QString err;
    dom = lookupDomain(c.conn.get(), name, err);
    return dom ? 0 : fail(ExitFailure, err);
}

SyncPlan planFor(const DaemonConfig& config, virDomainPtr dom, Trigger t)
{
    return planSync(t, config.policy, LibvirtBackend::readPolicy(dom), LibvirtBackend::facts(dom));
}

int countOption(const Invocation& in, const char* name, int max)
{
    if (!in.isSet(name))
        return 0;
    const auto n = parseBounded(in.value(name), 1, max);
    return n ? int(*n) : -1;
}

} // namespace clocksync::cli
