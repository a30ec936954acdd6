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

int main(int argc, char** argv)
{
    prepareQtForLibvirtEventLoop();
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName("virt-clocksyncd");
    QCoreApplication::setApplicationVersion(VIRT_CLOCKSYNC_VERSION);
    qSetMessagePattern("%{if-category}%{category}: %{endif}%{message}");

    QCommandLineParser cli;
    cli.setApplicationDescription(
        "Keeps the clocks of libvirt/QEMU guests right after a pause, restore, snapshot revert,\n"
        "migration or host sleep, through the QEMU guest agent. Runs in the foreground\n"
        "(systemd Type=notify); logs to stderr.");
    cli.addHelpOption();
    cli.addVersionOption();
    QCommandLineOption uriOpt({"c", "uri"}, "libvirt URI (overrides the config file).", "URI");
    QCommandLineOption configOpt(
        "config", QStringLiteral("Config file (default %1, and its drop-ins %1.d/*.conf).").arg(kDefaultConfigPath), "FILE");
    QCommandLineOption fgOpt("foreground",
                             "Run in the foreground (always the case; accepted for scripts).");
    QCommandLineOption checkOpt(
        "check-config", "Parse the config, print the problems and the effective settings, exit "
                        "(status 1 if anything was ignored).");
    cli.addOptions({uriOpt, configOpt, fgOpt, checkOpt});
    cli.process(app);

    // The config as given: the file, its drop-ins, then --uri.
    auto readConfig = [&]() {
        ConfigParse parsed = loadEffectiveConfig(cli.value(configOpt));
        for (const QString& w : parsed.warnings)
            std::fprintf(stderr, "%s\n", qPrintable(w));
        if (cli.isSet(uriOpt))
            parsed.config.uri = cli.value(uriOpt);
        return parsed;
    };
    const ConfigParse parsed = readConfig();
    DaemonConfig config = parsed.config;

    if (cli.isSet(checkOpt)) {
        if (config.controlSocket.isEmpty()) // show where it will be
            config.controlSocket = defaultControlPath(config.uri);
        std::printf("%s", qPrintable(formatConfig(config)));
        return parsed.warnings.isEmpty() ? 0 : 1;
    }

    if (!startLibvirtEventLoop()) {
        std::fprintf(stderr, "virt-clocksyncd: cannot start libvirt's event loop\n");
        return 1;
    }
    Daemon daemon(config, std::make_unique<LibvirtConnection>(config, qga::SystemClock::instance()));
    UnixSignals sigs;
    sigs.install({SIGTERM, SIGINT, SIGHUP});
    QObject::connect(&sigs, &UnixSignals::received, &app, [&](int sig) {
        if (sig == SIGHUP) { // reload: the config and its drop-ins, tracked state kept
            const QStringList changes = daemon.reload(readConfig().config);
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
        app.quit();
    });
    if (const QString err = daemon.start(); !err.isEmpty()) {
        std::fprintf(stderr, "virt-clocksyncd: %s; not starting a second one\n", qPrintable(err));
        return 1;
    }

#ifdef HAVE_LIBSYSTEMD
    // Under systemd (Type=notify): READY, a STATUS line, and the watchdog.
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
    QObject::connect(&daemon.hypervisor(), &Hypervisor::connected, &app, status);
    QObject::connect(&daemon.hypervisor(), &Hypervisor::disconnected, &app, status);
    QObject::connect(&daemon, &Daemon::syncFinished, &app, status);
    uint64_t watchdogUs = 0;
    QTimer watchdog;
    if (sd_watchdog_enabled(0, &watchdogUs) > 0) {
        QObject::connect(&watchdog, &QTimer::timeout, [] { sd_notify(0, "WATCHDOG=1"); });
        watchdog.start(int(watchdogUs / 2000));
    }
#endif
    return app.exec();
}
