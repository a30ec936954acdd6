// SPDX-License-Identifier: Apache-2.0
// virt-clocksyncd: keeps libvirt guests' clocks right after pause, restore,
// snapshot revert, migration and host sleep. Thin main: arguments, config,
// signals; the Daemon does the rest.
#include "config.h"
#include "controlserver.h"
#include "daemon.h"
#include "eventloop.h"
#include "libvirtconnection.h"
#include "unixsignals.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QTimer>

#include <csignal>
#include <cstdio>
#include <utility>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

using namespace clocksync;

namespace {

struct Options
{
    QString uri;        // --uri, overriding the config's
    QString configPath; // --config; empty: the default file
    bool checkConfig = false;
};

Options parseOptions(const QCoreApplication& app)
{
    QCommandLineParser cli;
    cli.setApplicationDescription(
        "Keeps the clocks of libvirt/QEMU guests right after a pause, restore, snapshot revert,\n"
        "migration or host sleep, through the QEMU guest agent. Runs in the foreground\n"
        "(systemd Type=notify); logs to stderr. SIGHUP reloads the config.");
    cli.addHelpOption();
    cli.addVersionOption();
    QCommandLineOption uriOpt({"c", "uri"}, "libvirt URI (overrides the config file).", "URI");
    QCommandLineOption configOpt(
        "config",
        QStringLiteral("Config file (default %1, and its drop-ins %1.d/*.conf).")
            .arg(kDefaultConfigPath),
        "FILE");
    QCommandLineOption fgOpt("foreground",
                             "Run in the foreground (always the case; accepted for scripts).");
    QCommandLineOption checkOpt(
        "check-config", "Parse the config and print the effective settings (status 0), or its "
                        "errors, each with file and line (status 1), and exit.");
    cli.addOptions({uriOpt, configOpt, fgOpt, checkOpt});
    cli.process(app);
    return {cli.value(uriOpt), cli.value(configOpt), cli.isSet(checkOpt)};
}

// The config as given: the file, its drop-ins, then --uri. Errors go to stderr.
ConfigParse readConfig(const Options& o)
{
    ConfigParse parsed = loadEffectiveConfig(o.configPath);
    for (const QString& e : parsed.errors)
        std::fprintf(stderr, "virt-clocksyncd: %s\n", qPrintable(e));
    if (!o.uri.isEmpty())
        parsed.config.uri = o.uri;
    return parsed;
}

// The effective settings, or (status 1) only the errors: a config with
// errors is never used, so its "effective settings" would be a lie.
int checkConfig(const ConfigParse& parsed)
{
    if (!parsed.ok()) {
        std::fprintf(stderr,
                     "virt-clocksyncd: %lld error(s); the daemon would not start with "
                     "this config\n",
                     static_cast<long long>(parsed.errors.size()));
        return 1;
    }
    DaemonConfig config = parsed.config;
    if (config.controlSocket.isEmpty()) // show where it will be
        config.controlSocket = defaultControlPath(config.uri);
    std::printf("%s", qPrintable(formatConfig(config)));
    return 0;
}

// SIGTERM/SIGINT stop; SIGHUP reloads the config (and drop-ins), tracked state kept.
void handleSignals(UnixSignals& sigs, Daemon& daemon, const Options& o)
{
    sigs.install({SIGTERM, SIGINT, SIGHUP});
    QObject::connect(&sigs, &UnixSignals::received, &daemon, [&daemon, o](int sig) {
        if (sig == SIGHUP) {
            const ConfigParse next = readConfig(o);
            if (!next.ok()) {
                std::fprintf(stderr, "virt-clocksyncd: not reloaded: the config has errors "
                                     "(above); the running config is kept\n");
                return;
            }
            const QStringList changes = daemon.reload(next.config);
            std::fprintf(stderr, "virt-clocksyncd: reloaded the config: %s\n",
                         changes.isEmpty() ? "no change"
                                           : qPrintable(QString::number(changes.size()) +
                                                        " change(s): " + changes.join(", ")));
            return;
        }
        static bool stopping = false; // a second signal (e.g. forwarded by runuser) changes nothing
        if (std::exchange(stopping, true))
            return;
        std::fprintf(stderr, "virt-clocksyncd: signal %d, stopping\n", sig);
        daemon.shutdown();
        QCoreApplication::quit();
    });
}

#ifdef HAVE_LIBSYSTEMD
// Under systemd (Type=notify): READY, a STATUS line, and the watchdog.
void notifySystemd(Daemon& daemon, QTimer& watchdog)
{
    auto status = [&daemon] {
        const QString text =
            QStringLiteral("STATUS=%1 %2, %3 guest(s) tracked")
                .arg(daemon.hypervisor().isConnected() ? "connected to" : "connecting to",
                     daemon.config().uri)
                .arg(daemon.tracker().trackedCount());
        sd_notify(0, text.toUtf8().constData());
    };
    sd_notify(0, "READY=1");
    status();
    QObject::connect(&daemon.hypervisor(), &Hypervisor::connected, &daemon, status);
    QObject::connect(&daemon.hypervisor(), &Hypervisor::disconnected, &daemon, status);
    QObject::connect(&daemon, &Daemon::syncFinished, &daemon, status);
    uint64_t watchdogUs = 0;
    if (sd_watchdog_enabled(0, &watchdogUs) > 0) {
        QObject::connect(&watchdog, &QTimer::timeout, [] { sd_notify(0, "WATCHDOG=1"); });
        watchdog.start(int(watchdogUs / 2000));
    }
}
#endif

} // namespace

int main(int argc, char** argv)
{
    prepareQtForLibvirtEventLoop();
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName("virt-clocksyncd");
    QCoreApplication::setApplicationVersion(VIRT_CLOCKSYNC_VERSION);
    // Under systemd, stderr goes to the journal: a <N> prefix gives each line
    // its priority (warnings are warnings there, not info).
    qSetMessagePattern(QStringLiteral("%1%{if-category}%{category}: %{endif}%{message}")
                           .arg(qEnvironmentVariableIsSet("JOURNAL_STREAM")
                                    ? "%{if-debug}<7>%{endif}%{if-info}<6>%{endif}"
                                      "%{if-warning}<4>%{endif}%{if-critical}<3>%{endif}"
                                      "%{if-fatal}<2>%{endif}"
                                    : ""));
    const Options options = parseOptions(app);
    const ConfigParse parsed = readConfig(options);
    if (options.checkConfig)
        return checkConfig(parsed);
    if (!parsed.ok()) {
        std::fprintf(stderr, "virt-clocksyncd: not starting: the config has errors (above)\n");
        return 1;
    }
    if (!startLibvirtEventLoop()) {
        std::fprintf(stderr, "virt-clocksyncd: cannot start libvirt's event loop\n");
        return 1;
    }
    const DaemonConfig& config = parsed.config;
    Daemon daemon(config,
                  std::make_unique<LibvirtConnection>(config, qga::SystemClock::instance()));
    UnixSignals sigs;
    handleSignals(sigs, daemon, options);
    if (const QString err = daemon.start(); !err.isEmpty()) {
        // Another daemon serves the socket, or it cannot be served: either way
        // no second syncer (the socket is the single-instance lock).
        std::fprintf(stderr, "virt-clocksyncd: control socket: %s; not starting\n",
                     qPrintable(err));
        return 1;
    }
    QTimer watchdog;
#ifdef HAVE_LIBSYSTEMD
    notifySystemd(daemon, watchdog);
#endif
    return app.exec();
}
