// CLI commands. Direct mode talks to libvirt; the daemon's control socket is
// used for status and metrics (and for sync when the daemon runs).
#include "cli.h"

#include "config.h"
#include "controlprotocol.h"
#include "guesthealth.h"
#include "hostcheck.h"
#include "libvirtagent.h"
#include "libvirtbackend.h"
#include "socketagent.h"
#include "syncengine.h"

#include <libvirt/virterror.h>
#include <nlohmann/json.hpp>

#include <QCoreApplication>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace clocksync::cli {

using nlohmann::json;

namespace {

const char* kUsage = R"(Usage: virt-clocksync [--uri URI] [--json] COMMAND [ARGS]

Keeps libvirt guests' clocks on the host clock through the QEMU guest agent.

Commands:
  sync DOMAIN...|--all     set guests to the host clock now (verified); through the
                           daemon when it runs, else directly against libvirt
  status [DOMAIN...]       the daemon's last result per guest
  metrics                  the daemon's metrics (Prometheus text format)
  offset DOMAIN            measure a guest's offset from the host clock (never sets)
  check-host               host timekeeping: TSC flags, clocksource, NTP state
  check-guest DOMAIN [--deep]
                           agent channel, connection, guest-set-time support, offset;
                           --deep: the guest's clocksource, ptp_kvm, time daemon (guest-exec)
  policy DOMAIN [--set KEY=VALUE...]
                           show or change the per-domain policy (domain metadata)
  help [COMMAND]           this text, or a command's

Options:
  -c, --uri URI   libvirt URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)
  --json          machine-readable output
  --control PATH  the daemon's control socket (default: /run/virt-clocksync/control.sock,
                  or $XDG_RUNTIME_DIR/virt-clocksync/control.sock for session URIs)

Exit status: 0 ok, 1 failure, 2 usage error, 3 outside tolerance,
4 guest agent unavailable, 5 cannot connect to libvirt or the daemon.
)";

const std::map<QString, const char*> kCommandHelp = {
    {"sync", "Usage: virt-clocksync sync DOMAIN...|--all [--samples N] [--attempts N]\n\n"
             "Measures each guest's offset (guest-get-time, min-RTT of N samples); if it is\n"
             "outside the domain's tolerance, sets the guest clock to the host clock\n"
             "(guest-set-time, nanoseconds, delay-compensated) and verifies, re-correcting up to\n"
             "the policy's attempts. --all: every running domain.\n"
             "Exit 0 when every guest is in sync afterwards, 3 if one is left outside its\n"
             "tolerance, 4 if an agent is unavailable.\n"},
    {"status", "Usage: virt-clocksync status [DOMAIN...]\n\n"
               "Asks the running daemon for each guest it tracks: its state (idle, waiting for\n"
               "its agent, syncing), and the last result: when, what triggered it, the offset\n"
               "before -> after, the sets made, and any error. Exit 5 if no daemon answers.\n"},
    {"metrics",
     "Usage: virt-clocksync metrics\n\n"
     "Prints the daemon's metrics in Prometheus text format. Exit 5 if no daemon answers.\n"},
    {"offset", "Usage: virt-clocksync offset DOMAIN [--samples N] [--socket PATH]\n\n"
               "Measures guest minus host clock without changing anything. --socket reads a\n"
               "guest agent's unix socket directly instead of going through libvirt (e.g. a\n"
               "read-only reference agent channel). Exit 3 if outside the domain's tolerance.\n"},
    {"check-host", "Usage: virt-clocksync check-host\n\n"
                   "Reports constant_tsc/nonstop_tsc, the clocksource and whether the host clock\n"
                   "is NTP/PTP synchronised (adjtimex), with advice where something is off.\n"
                   "Exit 3 if any advice was given.\n"},
    {"check-guest", "Usage: virt-clocksync check-guest DOMAIN [--deep]\n\n"
                    "Reports whether the domain has a guest agent channel, whether the agent\n"
                    "answers, whether guest-set-time is available (not blocked), the round trip\n"
                    "and the current offset. --deep also reports the guest's clocksource, ptp_kvm\n"
                    "and /dev/ptp*, its time daemon and sync state, with the RHEL guide's advice;\n"
                    "it runs a read-only shell probe through guest-exec, and only if the domain's\n"
                    "policy has guest-exec=yes (otherwise it says what it could not check).\n"},
    {"policy",
     "Usage: virt-clocksync policy DOMAIN [--set KEY=VALUE...] [--clear]\n\n"
     "Shows the domain's policy (its metadata under "
     "https://virt-clocksync.org/xmlns/policy/1"
     ")\nmerged over the defaults. --set changes keys live and in the persistent config:\n"
     "  enabled=yes|no  mode=host|rtc|off  tolerance-us=N  target-us=N  attempts=N\n"
     "  sync-on-boot=yes|no  watch-interval=SECONDS (0: off)  watch-correct=yes|no\n"
     "  max-backward-step-ms=MS (0: no limit; reconcile and host clock steps)\n"
     "  on-rtc-change=yes|no (refine after someone else sets the guest clock)\n"
     "  guest-exec=yes|no (allow check-guest --deep)\n"
     "  resync=TOKEN (any new value asks the daemon to sync now)\n"
     "--clear removes the domain's policy.\n"},
};

struct Options
{
    QString uri;
    QString control;
    bool json = false;
    QString command;
    QStringList args;
};

void printJson(const json& j)
{
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
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

struct Connection
{
    qga::ConnectHandle conn;
    QString error;
};

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

// Connects and looks the domain up; 0, or the exit code after printing why.
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

// Pulls "--flag VALUE" out of args.
std::optional<QString> takeOption(QStringList& args, const QString& flag)
{
    const qsizetype i = args.indexOf(flag);
    if (i < 0 || i + 1 >= args.size())
        return std::nullopt;
    QString v = args[i + 1];
    args.remove(i, 2);
    return v;
}

SyncPolicy effectivePolicy(virDomainPtr dom, QStringList* warnings)
{
    SyncPolicy p = DaemonConfig{}.policy;
    if (auto parsed = LibvirtBackend::readPolicy(dom)) {
        if (warnings)
            *warnings += parsed->warnings;
        p = applyOverride(p, parsed->policy);
    }
    return p;
}

int parseCount(QStringList& args, const QString& flag, int fallback, int max, bool& ok)
{
    ok = true;
    if (auto v = takeOption(args, flag)) {
        auto n = parseBounded(*v, 1, max);
        if (!n) {
            ok = false;
            return fallback;
        }
        return int(*n);
    }
    return fallback;
}

// ---- daemon client ---------------------------------------------------------

QString controlPath(const Options& o)
{
    if (!o.control.isEmpty())
        return o.control;
    QString uri = o.uri;
    if (uri.isEmpty())
        uri = qEnvironmentVariable("LIBVIRT_DEFAULT_URI");
    if (uri.isEmpty())
        uri = ::geteuid() == 0 ? "qemu:///system" : "qemu:///session";
    return defaultControlPath(uri);
}

struct DaemonReply
{
    bool reachable = false; // false: no daemon listening there
    json reply;
    QString error;
};

// One request, one reply line, with a deadline.
DaemonReply callDaemon(const QString& path, const json& request, int timeoutMs)
{
    DaemonReply r;
    const QByteArray p = path.toLocal8Bit();
    sockaddr_un addr{};
    if (std::size_t(p.size()) >= sizeof(addr.sun_path))
        return r;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.constData(), std::size_t(p.size()) + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return r;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
        r.error = QStringLiteral("cannot reach the daemon at %1: %2")
                      .arg(path, QString::fromLocal8Bit(std::strerror(errno)));
        ::close(fd);
        return r;
    }
    r.reachable = true;
    const std::string line = request.dump() + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size())) {
        r.error = "cannot send to the daemon";
        ::close(fd);
        return r;
    }
    std::string in;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (in.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        pollfd pfd{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&pfd, 1, int(left)) <= 0) {
            r.error = "the daemon did not answer in time";
            ::close(fd);
            return r;
        }
        char buf[65536];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            r.error = "the daemon closed the connection";
            ::close(fd);
            return r;
        }
        in.append(buf, std::size_t(n));
    }
    ::close(fd);
    r.reply = json::parse(in.substr(0, in.find('\n')), nullptr, false);
    if (r.reply.is_discarded() || !r.reply.is_object())
        r.error = "the daemon sent a malformed reply";
    else if (!r.reply.value("ok", false))
        r.error = QString::fromStdString(r.reply.value("error", std::string("daemon error")));
    return r;
}

json daemonRequest(const char* command)
{
    return {{"version", kControlVersion}, {"command", command}};
}

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

// ---- commands --------------------------------------------------------------

int cmdStatus(const Options& o)
{
    json req = daemonRequest("status");
    req["domains"] = json::array();
    for (const QString& d : o.args)
        req["domains"].push_back(d.toStdString());
    DaemonReply r = callDaemon(controlPath(o), req, 10000);
    if (!r.error.isEmpty())
        return fail(ExitConnection,
                    r.error + (r.reachable ? "" : " (is virt-clocksyncd running?)"));
    const json& doms = r.reply["domains"];
    if (o.json) {
        printJson(r.reply);
        return ExitOk;
    }
    std::printf("daemon: %s, libvirt %s\n",
                r.reply.value("connected", false) ? "connected" : "NOT connected",
                r.reply.value("uri", std::string()).c_str());
    if (!doms.is_array() || doms.empty()) {
        std::printf("no guests tracked yet\n");
        return o.args.isEmpty() ? ExitOk : ExitFailure;
    }
    std::printf("%-20s %-18s %-12s %-18s %-12s %s\n", "DOMAIN", "STATE", "WHEN", "TRIGGER",
                "RESULT", "OFFSET BEFORE -> AFTER, SETS, ERROR");
    int code = ExitOk;
    for (const json& d : doms) {
        const SyncResult last = d.contains("last") ? resultFromJson(d["last"]) : SyncResult{};
        std::string detail = "-";
        if (d.contains("last")) {
            detail = last.before ? formatOffset(last.before->offsetNs) : "not measured";
            if (last.after && last.attempts > 0)
                detail += " -> " + formatOffset(last.after->offsetNs);
            detail +=
                ", " + std::to_string(last.attempts) + " set" + (last.attempts == 1 ? "" : "s");
            if (last.error)
                detail += ", " + last.error->message;
            else if (!last.note.empty())
                detail += ", " + last.note;
            if (!last.ok())
                code = ExitOutOfTolerance;
        }
        std::printf("%-20s %-18s %-12s %-18s %-12s %s\n", d.value("domain", std::string()).c_str(),
                    d.value("state", std::string()).c_str(),
                    d.contains("last") ? ago(last.finishedAtNs).c_str() : "-",
                    d.contains("last") ? std::string(triggerName(last.trigger)).c_str() : "-",
                    d.contains("last") ? outcomeName(last.outcome) : "-", detail.c_str());
    }
    return code;
}

int cmdMetrics(const Options& o)
{
    DaemonReply r = callDaemon(controlPath(o), daemonRequest("metrics"), 10000);
    if (!r.error.isEmpty())
        return fail(ExitConnection,
                    r.error + (r.reachable ? "" : " (is virt-clocksyncd running?)"));
    std::fputs(r.reply.value("text", std::string()).c_str(), stdout);
    return ExitOk;
}

int cmdOffset(const Options& o)
{
    QStringList args = o.args;
    bool ok = true;
    const int samples = parseCount(args, "--samples", 5, 1000, ok);
    if (!ok)
        return fail(ExitUsage, "--samples takes 1..1000");
    const std::optional<QString> socket = takeOption(args, "--socket");
    if (args.size() != 1 || args[0].startsWith('-'))
        return fail(ExitUsage, "usage: virt-clocksync offset DOMAIN [--samples N] [--socket PATH]");
    const QString name = args[0];

    std::unique_ptr<qga::GuestAgent> agent;
    SyncPolicy policy;
    Connection c;
    if (socket) {
        agent =
            std::make_unique<qga::SocketAgent>(socket->toStdString(), qga::SystemClock::instance());
    } else {
        std::shared_ptr<virDomain> dom;
        if (int code = openDomain(o.uri, name, c, dom))
            return code;
        policy = effectivePolicy(dom.get(), nullptr);
        agent = std::make_unique<qga::LibvirtAgent>(dom, qga::SystemClock::instance(), 5);
    }
    qga::Expected<Measurement> m = measure(*agent, samples);
    if (!m)
        return fail(exitFor(m.error()),
                    QStringLiteral("%1: %2").arg(name, QString::fromStdString(m.error().message)));
    const bool within = std::llabs(m->offsetNs) <= policy.skipBelowNs;
    if (o.json) {
        json j = measurementToJson(*m);
        j["domain"] = name.toStdString();
        j["transport"] = agent->transport();
        j["within_tolerance"] = within;
        printJson(j);
    } else {
        std::printf(
            "%s: offset %s (+/-%s, min RTT %s over %d samples, via %s)\n", qPrintable(name),
            formatOffset(m->offsetNs).c_str(), formatOffset(m->uncertaintyNs).substr(1).c_str(),
            formatOffset(m->rttNs).substr(1).c_str(), m->samples, agent->transport().c_str());
    }
    return within ? ExitOk : ExitOutOfTolerance;
}

int cmdSync(const Options& o)
{
    QStringList args = o.args;
    bool ok = true;
    const int samples = parseCount(args, "--samples", 0, 1000, ok);
    if (!ok)
        return fail(ExitUsage, "--samples takes 1..1000");
    const int attempts = parseCount(args, "--attempts", 0, 10, ok);
    if (!ok)
        return fail(ExitUsage, "--attempts takes 1..10");
    const bool all = args.removeAll("--all") > 0;
    for (const QString& a : args)
        if (a.startsWith('-'))
            return fail(ExitUsage, "unknown option " + a);
    if (all == !args.isEmpty())
        return fail(ExitUsage, "usage: virt-clocksync sync DOMAIN...|--all");

    if (!samples && !attempts) {
        json req = daemonRequest("sync");
        req["all"] = all;
        req["domains"] = json::array();
        for (const QString& a : args)
            req["domains"].push_back(a.toStdString());
        DaemonReply r = callDaemon(controlPath(o), req, 180'000);
        if (r.reachable) {
            if (!r.error.isEmpty())
                return fail(ExitFailure, r.error);
            int worst = ExitOk;
            for (const json& jr : r.reply["results"]) {
                const SyncResult res = resultFromJson(jr);
                if (!o.json)
                    std::printf("%s: %s (via virt-clocksyncd)\n", res.domain.c_str(),
                                describe(res).c_str());
                if (!res.ok())
                    worst = std::max(worst, jr.contains("error") && jr["error"].value("kind", "") ==
                                                                        "agent-unavailable"
                                                ? int(ExitAgentUnavailable)
                                                : int(ExitOutOfTolerance));
            }
            if (o.json)
                printJson(r.reply["results"]);
            return worst;
        }
    }

    Connection c = openLibvirt(o.uri);
    if (!c.conn)
        return fail(ExitConnection, c.error);
    QStringList names = args;
    if (all) {
        virDomainPtr* doms = nullptr;
        const int n =
            virConnectListAllDomains(c.conn.get(), &doms, VIR_CONNECT_LIST_DOMAINS_RUNNING);
        for (int i = 0; i < n; ++i) {
            names << QString::fromUtf8(virDomainGetName(doms[i]));
            virDomainFree(doms[i]);
        }
        std::free(doms);
    }
    int worst = ExitOk;
    json out = json::array();
    for (const QString& name : names) {
        QString err;
        auto dom = lookupDomain(c.conn.get(), name, err);
        if (!dom) {
            worst = std::max(worst, int(ExitFailure));
            std::fprintf(stderr, "virt-clocksync: %s\n", qPrintable(err));
            continue;
        }
        QStringList warnings;
        SyncRequest req;
        req.trigger = Trigger::Request;
        req.triggerMonoNs = qga::SystemClock::instance().monotonicNs();
        req.policy = effectivePolicy(dom.get(), &warnings);
        for (const QString& w : warnings)
            std::fprintf(stderr, "virt-clocksync: %s: metadata %s\n", qPrintable(name),
                         qPrintable(w));
        if (samples)
            req.policy.samples = samples;
        if (attempts)
            req.policy.attempts = attempts;
        req.stillRunning = [d = dom.get()] {
            int state = 0, reason = 0;
            return virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING;
        };
        qga::LibvirtAgent agent(dom, qga::SystemClock::instance(), 5);
        DelayModel delay;
        SyncResult r = runSync(agent, qga::SystemClock::instance(), req, delay);
        r.domain = name.toStdString();
        if (o.json)
            out.push_back(resultToJson(r));
        else
            std::printf("%s: %s\n", qPrintable(name), describe(r).c_str());
        if (r.error)
            worst = std::max(worst, exitFor(*r.error));
        else if (r.outcome == Outcome::Failed || r.outcome == Outcome::Cancelled)
            worst = std::max(worst, int(ExitFailure));
    }
    if (o.json)
        printJson(out);
    return worst;
}

int cmdCheckHost(const Options& o)
{
    HostCheck c = checkHost();
    if (o.json) {
        json j = {{"constant_tsc", c.constantTsc},
                  {"nonstop_tsc", c.nonstopTsc},
                  {"clocksource", c.clocksource.toStdString()},
                  {"estimated_error_us", c.estimatedErrorUs},
                  {"max_error_us", c.maxErrorUs},
                  {"advice", json::array()}};
        j["ntp_synchronised"] = c.ntpSynchronised ? json(*c.ntpSynchronised) : json(nullptr);
        for (const QString& a : c.advice)
            j["advice"].push_back(a.toStdString());
        printJson(j);
    } else {
        auto yn = [](bool b) { return b ? "yes" : "NO"; };
        std::printf("constant_tsc        %s\n", yn(c.constantTsc));
        std::printf("nonstop_tsc         %s\n", yn(c.nonstopTsc));
        std::printf("clocksource         %s (available: %s)\n", qPrintable(c.clocksource),
                    qPrintable(c.availableClocksources.join(' ')));
        std::printf("NTP/PTP synchronised %s",
                    c.ntpSynchronised ? yn(*c.ntpSynchronised) : "unknown");
        if (c.ntpSynchronised && *c.ntpSynchronised)
            std::printf(" (estimated error %lld us, maximum %lld us)", c.estimatedErrorUs,
                        c.maxErrorUs);
        std::printf("\n");
        for (const QString& a : c.advice)
            std::printf("advice: %s\n", qPrintable(a));
        if (c.advice.isEmpty())
            std::printf("host timekeeping looks right\n");
    }
    return c.advice.isEmpty() ? ExitOk : ExitOutOfTolerance;
}

int cmdCheckGuest(const Options& o)
{
    QStringList args = o.args;
    const bool deep = args.removeAll("--deep") > 0;
    if (args.size() != 1 || args[0].startsWith('-'))
        return fail(ExitUsage, "usage: virt-clocksync check-guest DOMAIN [--deep]");
    Connection c;
    std::shared_ptr<virDomain> dom;
    if (int code = openDomain(o.uri, args[0], c, dom))
        return code;
    json j = {{"domain", args[0].toStdString()}};
    qga::CString xml(virDomainGetXMLDesc(dom.get(), 0));
    const QString desc = QString::fromUtf8(xml ? xml.get() : "");
    const bool channel = desc.contains("org.qemu.guest_agent.0");
    j["agent_channel"] = channel;
    j["agent_connected"] =
        desc.contains("state='connected'") || desc.contains("state=\"connected\"");
    int code = ExitOk;
    qga::RawLibvirtAgent raw(dom, qga::SystemClock::instance(), 5);
    qga::Expected<qga::AgentInfo> info = raw.info();
    if (info) {
        j["agent_version"] = info->version;
        j["guest_set_time"] = info->supports("guest-set-time");
        j["guest_get_time"] = info->supports("guest-get-time");
        if (!info->supports("guest-set-time"))
            code = ExitAgentUnavailable;
    } else {
        j["agent_error"] = info.error().message;
        code = exitFor(info.error());
    }
    if (info) {
        qga::LibvirtAgent agent(dom, qga::SystemClock::instance(), 5);
        if (auto m = measure(agent, 5)) {
            j["offset"] = measurementToJson(*m);
            if (std::llabs(m->offsetNs) > effectivePolicy(dom.get(), nullptr).skipBelowNs &&
                code == ExitOk)
                code = ExitOutOfTolerance;
        }
    }
    // --deep: the guest's own timekeeping, only if its policy allows guest-exec.
    std::optional<GuestHealth> health;
    QString deepSkipped;
    if (deep) {
        if (!effectivePolicy(dom.get(), nullptr).allowGuestExec) {
            deepSkipped =
                "not checked: the guest's clocksource, ptp_kvm and /dev/ptp*, and its time daemon "
                "(chronyd/ntpd/timesyncd) and sync state; these need guest-exec, which this "
                "domain's policy does not allow (virt-clocksync policy " +
                args[0] + " --set guest-exec=yes)";
        } else if (auto h = probeGuestHealth(dom, 10)) {
            health = *h;
        } else {
            deepSkipped =
                "not checked: guest-exec failed: " + QString::fromStdString(h.error().message);
        }
        json d = json::object();
        if (health) {
            for (auto it = health->facts.begin(); it != health->facts.end(); ++it) {
                json vals = json::array();
                for (const QString& v : it.value())
                    vals.push_back(v.toStdString());
                d[it.key().toStdString()] = vals;
            }
            d["advice"] = json::array();
            for (const QString& a : health->advice)
                d["advice"].push_back(a.toStdString());
        } else {
            d["skipped"] = deepSkipped.toStdString();
        }
        j["deep"] = d;
    }
    if (o.json) {
        printJson(j);
        return code;
    }
    auto yn = [](bool b) { return b ? "yes" : "NO"; };
    std::printf("agent channel configured  %s\n", yn(channel));
    std::printf("agent connected           %s\n", yn(j["agent_connected"].get<bool>()));
    if (info) {
        std::printf("agent version             %s\n", info->version.c_str());
        std::printf("guest-get-time available  %s\n", yn(info->supports("guest-get-time")));
        std::printf("guest-set-time available  %s%s\n", yn(info->supports("guest-set-time")),
                    info->supports("guest-set-time")
                        ? ""
                        : " (blocked or unknown: only --sync from RTC, if at all)");
    } else {
        std::printf("agent                     unavailable: %s\n", info.error().message.c_str());
    }
    if (j.contains("offset")) {
        std::printf("round trip (min)          %s\n",
                    formatOffset(j["offset"]["rtt_ns"].get<int64_t>()).substr(1).c_str());
        std::printf("offset                    %s\n",
                    formatOffset(j["offset"]["offset_ns"].get<int64_t>()).c_str());
    }
    if (!channel)
        std::printf(
            "advice: add <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>"
            "</channel> to the domain and install qemu-guest-agent in the guest\n");
    if (health) {
        auto fact = [&](const char* k) { return health->facts.value(k).join(", "); };
        std::printf("guest clocksource         %s (available: %s)\n",
                    qPrintable(fact("clocksource")), qPrintable(fact("available")));
        std::printf("ptp_kvm loaded            %s%s\n", qPrintable(fact("ptp_kvm")),
                    fact("ptp_device").isEmpty() ? ""
                                                 : qPrintable(" (" + fact("ptp_device") + ")"));
        std::printf("time daemon               %s\n",
                    fact("time_daemon").isEmpty() ? "none" : qPrintable(fact("time_daemon")));
        if (!fact("ntp_synchronized").isEmpty() || !fact("chrony_leap").isEmpty())
            std::printf("guest sync state          %s\n",
                        qPrintable(fact("ntp_synchronized") + " " + fact("chrony_leap") + " " +
                                   fact("chrony_offset")));
        for (const QString& a : health->advice)
            std::printf("advice: %s\n", qPrintable(a));
    } else if (deep) {
        std::printf("deep checks               %s\n", qPrintable(deepSkipped));
    }
    return code;
}

// The effective policy of a domain: every per-domain row of the settings
// table, the defaults overridden by its metadata.
void printPolicy(const QString& domain, const PolicyOverride& o, bool json)
{
    DaemonConfig c;
    c.policy = applyOverride(c.policy, o);
    nlohmann::json j = {{"domain", domain.toStdString()},
                        {"metadata", policyToXml(o).toStdString()}};
    if (!json)
        std::printf("%-21s%s\n%-21s%s\n", "domain", qPrintable(domain), "metadata",
                    o.isEmpty() ? "(none: defaults)" : qPrintable(policyToXml(o)));
    for (const Setting& s : settings()) {
        if (!s.perDomain)
            continue;
        const QString v = s.get(c);
        if (!json) {
            std::printf("%-21s%s\n", s.key, qPrintable(v));
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
    if (json)
        printJson(j);
}

int cmdPolicy(const Options& o)
{
    QStringList args = o.args;
    const bool clear = args.removeAll("--clear") > 0;
    QStringList sets;
    while (auto v = takeOption(args, "--set"))
        sets << *v;
    if (args.size() != 1 || args[0].startsWith('-'))
        return fail(ExitUsage,
                    "usage: virt-clocksync policy DOMAIN [--set KEY=VALUE...] [--clear]");
    Connection c;
    std::shared_ptr<virDomain> dom;
    if (int code = openDomain(o.uri, args[0], c, dom))
        return code;
    qga::Expected<PolicyParse> current = LibvirtBackend::readPolicy(dom.get());
    if (!current)
        return fail(ExitFailure, QString::fromStdString(current.error().message));
    PolicyOverride o2 = clear ? PolicyOverride{} : current->policy;
    for (const QString& s : sets) {
        const qsizetype eq = s.indexOf('=');
        if (eq <= 0)
            return fail(ExitUsage, "--set takes KEY=VALUE, got '" + s + "'");
        if (auto e = setPolicyKey(o2, s.left(eq), s.mid(eq + 1)))
            return fail(ExitUsage, *e);
    }
    if (clear || !sets.isEmpty()) {
        if (auto w = LibvirtBackend::writePolicy(dom.get(), o2); !w)
            return fail(ExitFailure, QString::fromStdString(w.error().message));
    }
    for (const QString& w : current->warnings)
        std::fprintf(stderr, "virt-clocksync: %s: metadata %s\n", qPrintable(args[0]),
                     qPrintable(w));
    printPolicy(args[0], o2, o.json);
    return ExitOk;
}

} // namespace

int run(const QStringList& argv)
{
    Options o;
    QStringList rest;
    for (qsizetype i = 0; i < argv.size(); ++i) {
        const QString& a = argv[i];
        if ((a == "--uri" || a == "-c") && i + 1 < argv.size())
            o.uri = argv[++i];
        else if (a.startsWith("--uri="))
            o.uri = a.mid(6);
        else if (a == "--control" && i + 1 < argv.size())
            o.control = argv[++i];
        else if (a == "--json")
            o.json = true;
        else if (a == "-h" || a == "--help")
            rest.prepend("help");
        else if (a == "--version") {
            std::printf("virt-clocksync %s\n", VIRT_CLOCKSYNC_VERSION);
            return ExitOk;
        } else
            rest << a;
    }
    if (rest.isEmpty()) {
        std::fputs(kUsage, stderr);
        return ExitUsage;
    }
    o.command = rest.takeFirst();
    o.args = rest;
    if (o.command == "help") {
        if (!o.args.isEmpty() && o.args[0] != "help") {
            auto it = kCommandHelp.find(o.args[0]);
            if (it == kCommandHelp.end())
                return fail(ExitUsage, "no such command: " + o.args[0]);
            std::fputs(it->second, stdout);
            return ExitOk;
        }
        std::fputs(kUsage, stdout);
        return ExitOk;
    }
    if (o.command == "sync")
        return cmdSync(o);
    if (o.command == "status")
        return cmdStatus(o);
    if (o.command == "metrics")
        return cmdMetrics(o);
    if (o.command == "offset")
        return cmdOffset(o);
    if (o.command == "check-host")
        return cmdCheckHost(o);
    if (o.command == "check-guest")
        return cmdCheckGuest(o);
    if (o.command == "policy")
        return cmdPolicy(o);
    return fail(ExitUsage, "unknown command '" + o.command + "' (see virt-clocksync --help)");
}

} // namespace clocksync::cli
