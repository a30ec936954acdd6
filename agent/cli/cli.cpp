// SPDX-License-Identifier: Apache-2.0
// The command table and what is driven from it: option parsing, usage, help
// and dispatch. Adding a command is one row here plus its handler.
#include "cli.h"

#include "common.h"
#include "controlclient.h"
#include "settings.h"

#include <QCommandLineParser>

#include <cstdio>
#include <unistd.h>

namespace clocksync::cli {

namespace {

constexpr OptionSpec kGlobal[] = {
    {"c,connect,uri", "URI",
     "libvirt URI, as virsh's -c/--connect (default: $LIBVIRT_DEFAULT_URI, else libvirt's "
     "default: qemu:///system as root, qemu:///session for other users)"},
    {"control", "PATH",
     "the daemon's control socket (default: control-socket in the config, else "
     "/run/virt-clocksync/control.sock, or $XDG_RUNTIME_DIR/virt-clocksync/control.sock for a "
     "non-root session URI)"},
    {"config", "FILE",
     "the daemon's config, whose [sync] defaults the CLI uses too (default "
     "/etc/virt-clocksync/virt-clocksyncd.conf and its .conf.d/*.conf drop-ins)"},
    {"json", nullptr, "machine-readable output"},
    {"h,help", nullptr, "this text (help COMMAND: a command's)"},
    {"version", nullptr, "the version"},
};

constexpr OptionSpec kSyncOpts[] = {
    {"all", nullptr, "every running domain"},
    {"samples", "N", "get-time samples per measurement, 1..1000 (this sync only)"},
    {"attempts", "N", "set+verify rounds, 1..10 (this sync only)"},
};
constexpr OptionSpec kOffsetOpts[] = {
    {"samples", "N", "get-time samples, 1..1000 (default: samples in the config)"},
    {"socket", "PATH", "read a guest agent's unix socket directly, not through libvirt"},
};
constexpr OptionSpec kCheckGuestOpts[] = {
    {"deep", nullptr, "also the guest's clocksource, ptp_kvm, time daemon (needs guest-exec=yes)"},
};
constexpr OptionSpec kPolicyOpts[] = {
    {"set", "KEY=VALUE", "change a key, live and in the persistent config (repeatable)"},
    {"clear", nullptr, "remove the domain's policy"},
};

// The per-domain keys, from the settings table: a new key shows here by itself.
void printPolicyKeys()
{
    std::printf("\nKeys:\n");
    for (const Setting& s : settings())
        if (s.perDomain)
            std::printf("  %-22s %s\n", s.key, s.expected);
    std::printf("  %-22s %s\n", "resync", "any new value asks the daemon to sync now");
}

constexpr Command kCommands[] = {
    {"sync", "DOMAIN...|--all", 0, -1,
     "set guests' clocks now (verified); through the daemon when it runs",
     "Measures each guest's offset (guest-get-time, min-RTT of N samples); if it is outside\n"
     "the domain's tolerance, sets the guest clock to the time it is meant to run at (host\n"
     "UTC, or host UTC + the adjustment of a variable <clock>; guest-set-time, nanoseconds,\n"
     "delay-compensated) and verifies, re-correcting up to the policy's attempts. A guest\n"
     "whose policy says off, whose <clock> is absolute, or whose policy or XML cannot be\n"
     "understood is left alone (skipped, with the reason). Through the daemon when one\n"
     "answers on the control socket (--samples and --attempts go with the request), else\n"
     "directly against libvirt, deciding as the daemon would. Exit 0 when every guest is in\n"
     "sync afterwards, 3 if one is left outside its tolerance, 4 if an agent is unavailable.",
     kSyncOpts, cmdSync},
    {"status",
     "[DOMAIN...]",
     0,
     -1,
     "the daemon's last result per guest",
     "Asks the running daemon for each guest it tracks: its state (idle, waiting for its\n"
     "agent, syncing), and the last result: when, what triggered it, the offset before ->\n"
     "after, the sets made, and any error. Exit status: the worst row's -- 0 fine, or a\n"
     "sync cancelled because the guest paused or stopped (it is synced when it runs\n"
     "again); 1 left alone for a policy or XML problem; 3 failed or drifted -- and 1 for\n"
     "a DOMAIN not tracked, 5 if no daemon answers.",
     {},
     cmdStatus},
    {"metrics",
     "",
     0,
     0,
     "the daemon's metrics (Prometheus text format)",
     "Prints the daemon's metrics in Prometheus text format. Exit 5 if no daemon answers.",
     {},
     cmdMetrics},
    {"offset", "DOMAIN", 1, 1, "measure a guest's offset from the host clock (never sets)",
     "Measures guest minus host clock without changing anything. Exit 3 if outside the\n"
     "domain's tolerance.",
     kOffsetOpts, cmdOffset},
    {"check-host",
     "",
     0,
     0,
     "host timekeeping: TSC flags, clocksource, NTP state",
     "Reports constant_tsc/nonstop_tsc, the clocksource and whether the host clock is NTP/PTP\n"
     "synchronised (adjtimex), with advice where something is off; also libvirt-guests'\n"
     "SYNC_TIME, which undoes a verified sync. Exit 3 if any advice was given.",
     {},
     cmdCheckHost},
    {"check-guest", "DOMAIN", 1, 1, "agent channel, connection, guest-set-time support, offset",
     "Reports whether the domain has a guest agent channel and its state, whether the daemon\n"
     "would sync it and to what time (or why it leaves it alone: exit 1 for a policy or XML\n"
     "it cannot understand), whether the agent answers, whether guest-set-time is available\n"
     "(not blocked), the round trip and the current offset. guest-info has no typed libvirt API, "
     "so this command makes one\n"
     "virDomainQemuAgentCommand call (libvirt then marks the domain custom-ga-command).\n"
     "--deep runs a read-only shell probe through guest-exec, only if the domain's policy has\n"
     "guest-exec=yes (otherwise it says what it could not check).",
     kCheckGuestOpts, cmdCheckGuest},
    {"policy", "DOMAIN", 1, 1, "show or change the per-domain policy (domain metadata)",
     "Shows the domain's policy (its metadata under https://virt-clocksync.org/xmlns/policy/1)\n"
     "merged over the config's defaults; --set changes it (virt-clocksyncd.conf(5)), and\n"
     "refuses a policy it cannot understand: --clear --set replaces it.",
     kPolicyOpts, cmdPolicy, printPolicyKeys},
};

const Command* findCommand(const QString& name)
{
    for (const Command& c : kCommands)
        if (name == QLatin1String(c.name))
            return &c;
    return nullptr;
}

QString optionLabel(const OptionSpec& o)
{
    QString label;
    for (const QString& n : QString::fromLatin1(o.names).split(','))
        label += (label.isEmpty() ? "" : ", ") + QString(n.size() == 1 ? "-" : "--") + n;
    return o.valueName ? label + ' ' + o.valueName : label;
}

// "  LABEL  text", the text wrapped at 79 columns under its own column.
void printItem(FILE* out, const QString& label, const char* text)
{
    constexpr int kColumn = 29;
    QString line = QStringLiteral("  %1").arg(label, -(kColumn - 3));
    if (line.size() >= kColumn)
        line += ' ';
    bool first = true;
    for (const QString& word : QString::fromLatin1(text).split(' ', Qt::SkipEmptyParts)) {
        if (!first && line.size() + 1 + word.size() > 79) {
            std::fprintf(out, "%s\n", qPrintable(line));
            line = QString(kColumn - 1, ' ');
            first = true;
        }
        line += (first ? "" : " ") + word;
        first = false;
    }
    std::fprintf(out, "%s\n", qPrintable(line));
}

void printOptions(FILE* out, std::span<const OptionSpec> options)
{
    for (const OptionSpec& o : options)
        printItem(out, optionLabel(o), o.help);
}

void printUsage(FILE* out)
{
    std::fprintf(out, "Usage: virt-clocksync [OPTIONS] COMMAND [ARGS]\n\n"
                      "Keeps libvirt guests' clocks on the host clock through the QEMU guest "
                      "agent.\n\nCommands:\n");
    for (const Command& c : kCommands)
        printItem(out, QString("%1 %2").arg(c.name, c.args), c.summary);
    printItem(out, "help [COMMAND]", "this text, or a command's");
    std::fprintf(out, "\nOptions:\n");
    printOptions(out, kGlobal);
    std::fprintf(out, "\nExit status: 0 ok, 1 failure, 2 usage error, 3 outside tolerance,\n"
                      "4 guest agent unavailable, 5 cannot connect to libvirt or the daemon.\n");
}

void printCommandHelp(const Command& c)
{
    std::printf("Usage: virt-clocksync [OPTIONS] %s %s\n\n%s\n", c.name, c.args, c.help);
    if (c.moreHelp)
        c.moreHelp();
    if (!c.options.empty()) {
        std::printf("\nOptions:\n");
        printOptions(stdout, c.options);
    }
    std::printf("\nEvery command also takes the global options (virt-clocksync --help).\n");
}

QCommandLineOption toQt(const OptionSpec& o)
{
    const QStringList names = QString::fromLatin1(o.names).split(',');
    return o.valueName ? QCommandLineOption(names, o.help, o.valueName)
                       : QCommandLineOption(names, o.help);
}

// Whether arg is a global option whose value is the next argument ("-c URI").
bool takesNextAsValue(const QString& arg)
{
    for (const OptionSpec& o : kGlobal)
        if (o.valueName)
            for (const QString& n : QString::fromLatin1(o.names).split(','))
                if (arg == QString(n.size() == 1 ? "-" : "--") + n)
                    return true;
    return false;
}

// The first argument that is not an option or a global option's value.
qsizetype commandIndex(const QStringList& args)
{
    for (qsizetype i = 0; i < args.size(); ++i) {
        const QString& a = args[i];
        if (takesNextAsValue(a))
            ++i;
        else if (!a.startsWith('-'))
            return i;
    }
    return -1;
}

int help(const QStringList& topics)
{
    if (topics.isEmpty() || topics[0].isEmpty() || topics[0] == "help") {
        printUsage(stdout);
        return ExitOk;
    }
    const Command* c = findCommand(topics[0]);
    if (!c)
        return fail(ExitUsage, "no such command: " + topics[0]);
    printCommandHelp(*c);
    return ExitOk;
}

Invocation invocation(const QCommandLineParser& p, const ConfigParse& config)
{
    Invocation in;
    in.uri = p.value("connect");
    in.json = p.isSet("json");
    in.config = config.config;
    in.control = controlPath(p.value("control"), in.config.controlSocket, in.uri);
    in.args = p.positionalArguments();
    in.options = &p;
    return in;
}

} // namespace

std::span<const Command> commands()
{
    return kCommands;
}

std::span<const OptionSpec> globalOptions()
{
    return kGlobal;
}

int run(const QStringList& argv)
{
    QStringList args = argv;
    const qsizetype at = commandIndex(args);
    const QString name = at >= 0 ? args.takeAt(at) : QString();
    const Command* cmd = findCommand(name);
    QCommandLineParser p;
    p.setSingleDashWordOptionMode(QCommandLineParser::ParseAsLongOptions);
    for (const OptionSpec& o : globalOptions())
        p.addOption(toQt(o));
    if (cmd)
        for (const OptionSpec& o : cmd->options)
            p.addOption(toQt(o));
    if (!p.parse(QStringList{"virt-clocksync"} + args))
        return fail(ExitUsage,
                    p.errorText() +
                        (cmd ? QStringLiteral(" (see virt-clocksync help %1)").arg(cmd->name)
                             : QStringLiteral(" (see virt-clocksync --help)")));
    if (p.isSet("version")) {
        std::printf("virt-clocksync %s\n", VIRT_CLOCKSYNC_VERSION);
        return ExitOk;
    }
    if (name == "help" || p.isSet("help"))
        return help(name == "help" ? p.positionalArguments() : QStringList{name});
    if (name.isEmpty()) {
        printUsage(stderr);
        return ExitUsage;
    }
    if (!cmd)
        return fail(ExitUsage, "unknown command '" + name + "' (see virt-clocksync --help)");
    const qsizetype n = p.positionalArguments().size();
    if (n < cmd->minArgs || (cmd->maxArgs >= 0 && n > cmd->maxArgs))
        return fail(ExitUsage,
                    QStringLiteral("usage: virt-clocksync %1 %2").arg(cmd->name, cmd->args));
    // The daemon refuses a config it cannot read; so does the CLI, whose
    // defaults (policy, control socket) come from it.
    const ConfigParse config = loadEffectiveConfig(p.value("config"));
    for (const QString& e : config.errors)
        std::fprintf(stderr, "virt-clocksync: %s\n", qPrintable(e));
    if (!config.ok())
        return fail(ExitUsage, "the config has errors (see above): fix it, or pass --config FILE");
    return cmd->run(invocation(p, config));
}

} // namespace clocksync::cli
