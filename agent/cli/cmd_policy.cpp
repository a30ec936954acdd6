// SPDX-License-Identifier: Apache-2.0
// The policy command: a domain's metadata policy, shown as the effective
// settings (loops over the settings table) and changed with --set.
#include "common.h"

#include "libvirtbackend.h"
#include "settings.h"

#include <cstdio>

namespace clocksync::cli {

namespace {

// Every per-domain row of the settings table: the defaults (config file)
// overridden by the domain's metadata.
void printPolicy(const Invocation& in, const PolicyOverride& o,
                 const std::optional<QString>& nextBoot)
{
    DaemonConfig c = in.config;
    c.policy = applyOverride(c.policy, o);
    nlohmann::json j = {{"domain", in.args[0].toStdString()},
                        {"metadata", policyToXml(o).toStdString()}};
    if (nextBoot)
        j["next_boot_metadata"] = nextBoot->toStdString();
    if (!in.json)
        std::printf("%-23s%s\n%-23s%s\n", "domain", qPrintable(in.args[0]), "metadata",
                    o.isEmpty() ? "(none: defaults)" : qPrintable(policyToXml(o)));
    if (!in.json && nextBoot)
        std::printf("%-23s%s (the persistent definition's; pending until the next boot, or "
                    "virt-clocksync policy %s --set ...)\n",
                    "next boot", nextBoot->isEmpty() ? "(none: defaults)" : qPrintable(*nextBoot),
                    qPrintable(in.args[0]));
    for (const Setting& s : settings()) {
        if (!s.perDomain)
            continue;
        const QString v = s.get(c);
        if (!in.json) {
            std::printf("%-23s%s\n", s.key, qPrintable(v));
            continue;
        }
        const std::string name = QString::fromLatin1(s.key).replace('-', '_').toStdString();
        if (s.kind == ValueKind::Bool)
            j[name] = v == "yes";
        else if (s.kind == ValueKind::Int)
            j[name] = v.toLongLong();
        else
            j[name] = v.toStdString();
    }
    if (in.json)
        printJson(j);
}

void printErrors(const QString& domain, const QStringList& errors)
{
    for (const QString& e : errors)
        std::fprintf(stderr, "virt-clocksync: %s: %s\n", qPrintable(domain), qPrintable(e));
}

} // namespace

int cmdPolicy(const Invocation& in)
{
    Connection c;
    std::shared_ptr<virDomain> dom;
    if (int code = openDomain(in.uri, in.args[0], c, dom))
        return code;
    qga::Expected<PolicyParse> current = LibvirtBackend::readPolicy(dom.get());
    if (!current)
        return fail(ExitFailure, QString::fromStdString(current.error().message));
    const bool clear = in.isSet("clear");
    const QStringList sets = in.options->values("set");
    // --set edits the policy as it stands; one that cannot be read would be
    // rewritten without its broken keys -- a typo'd mode="of" becoming the
    // default mode=host, and the guest synced. Replacing it is explicit.
    if (!sets.isEmpty() && !clear && !current->ok()) {
        printErrors(in.args[0], current->errors);
        return fail(ExitFailure,
                    QStringLiteral("%1: its policy metadata cannot be understood, so --set cannot "
                                   "edit it (nothing written); replace it: virt-clocksync policy "
                                   "%1 --clear --set KEY=VALUE ...")
                        .arg(in.args[0]));
    }
    PolicyOverride o = clear ? PolicyOverride{} : current->policy;
    for (const QString& s : sets) {
        const qsizetype eq = s.indexOf('=');
        if (eq <= 0)
            return fail(ExitUsage, "--set takes KEY=VALUE, got '" + s + "'");
        if (auto e = setPolicyKey(o, s.left(eq), s.mid(eq + 1)))
            return fail(ExitUsage, *e);
    }
    const bool written = clear || !sets.isEmpty();
    if (written) {
        if (auto w = LibvirtBackend::writePolicy(dom.get(), o); !w)
            return fail(ExitFailure, QString::fromStdString(w.error().message));
    }
    if (!written && !current->ok()) {
        // The daemon leaves the guest alone until the metadata is fixed; the
        // effective settings would be a guess.
        printErrors(in.args[0], current->errors);
        return fail(ExitFailure, QStringLiteral("%1: its policy metadata cannot be understood: the "
                                                "daemon leaves this guest alone until it is fixed "
                                                "(virt-clocksync policy %1 --clear, or --set)")
                                     .arg(in.args[0]));
    }
    // Written: live and persistent now agree.
    printPolicy(in, o, written ? std::nullopt : current->nextBoot);
    return ExitOk;
}

} // namespace clocksync::cli
