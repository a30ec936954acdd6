// SPDX-License-Identifier: Apache-2.0
// The daemon's wiring without libvirt: a FakeHypervisor sends events and
// (dis)connects, FakeBackend serves the domains; the test talks to the real
// control socket. Events in → syncs → results on the control socket, in the
// metrics and the status; reconnect → reconcile; migration sides; forget;
// reload keeps tracked state; host sleep (logind on a private bus) and host
// clock steps (a fake timerfd) sync every running guest.
#include "daemon.h"
#include "fakehostsignals.h"
#include "fakehypervisor.h"
#include "metricsserver.h"
#include "unixclient.h"

#include <QFile>
#include <QHostAddress>
#include <QSignalSpy>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include "skip.h"

#include <set>

#include <sys/socket.h>

using namespace clocksync;
using nlohmann::json;

class TestDaemon : public QObject
{
    Q_OBJECT
    QTemporaryDir m_dir;
    FakeClock m_clock;
    FakeHypervisor* m_hv = nullptr;     // owned by m_daemon
    FakeClockSet* m_clockSet = nullptr; // owned by m_daemon
    PrivateBus m_bus;
    QString m_busAddress;
    std::unique_ptr<Daemon> m_daemon;
    std::unique_ptr<QSignalSpy> m_spy;

    DaemonConfig config() const
    {
        DaemonConfig c;
        c.controlSocket = m_dir.filePath("control.sock");
        c.agentWaitSeconds = 5;
        return c;
    }

    // The next result (of trigger t, if given), skipping others.
    SyncResult next(std::optional<Trigger> t = std::nullopt)
    {
        for (;;) {
            if (m_spy->isEmpty() && !m_spy->wait(10000)) {
                SyncResult none;
                none.note = "no result within 10 s";
                return none;
            }
            SyncResult r = m_spy->takeFirst().at(0).value<SyncResult>();
            if (!t || r.trigger == *t)
                return r;
        }
    }

    // One request on the control socket; the reply (null on timeout).
    json ask(const json& request)
    {
        const int fd = connectUnix(m_daemon->config().controlSocket, SOCK_NONBLOCK);
        if (fd < 0)
            return nullptr;
        const std::string line = request.dump() + "\n";
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size())) {
            ::close(fd);
            return nullptr;
        }
        std::string in;
        const bool got = QTest::qWaitFor(
            [&] {
                char buf[65536];
                const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
                if (n > 0)
                    in.append(buf, std::size_t(n));
                return in.find('\n') != std::string::npos;
            },
            10000);
        ::close(fd);
        return got ? json::parse(in.substr(0, in.find('\n')), nullptr, false) : json(nullptr);
    }
    // One HTTP exchange with the metrics endpoint (the event loop runs meanwhile).
    static QByteArray http(quint16 port, const QByteArray& request)
    {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port);
        if (!QTest::qWaitFor([&] { return s.state() == QAbstractSocket::ConnectedState; }, 5000))
            return {};
        s.write(request);
        QByteArray in;
        const bool closed = QTest::qWaitFor(
            [&] {
                in += s.readAll();
                return s.state() == QAbstractSocket::UnconnectedState;
            },
            5000);
        return closed ? in + s.readAll() : QByteArray(); // a reply ends with the close
    }
    static json request(const char* command)
    {
        return {{"version", kControlVersion}, {"command", command}};
    }
    void addDomain(const std::string& uuid, const std::string& name, int64_t offsetNs)
    {
        FakeBackend::Domain d;
        d.offsetNs = offsetNs;
        m_hv->fake.setDomain(uuid, d);
        m_hv->names[uuid] = name;
    }

    // Every running guest gets one result of trigger t.
    void expectEveryGuestSynced(Trigger t, const std::set<std::string>& names)
    {
        std::set<std::string> seen;
        while (seen.size() < names.size()) {
            const SyncResult r = next(t);
            QVERIFY2(r.trigger == t && r.ok(), describe(r).c_str());
            seen.insert(r.domain);
        }
        QCOMPARE(seen, names);
    }

private slots:
    void initTestCase()
    {
        // Without a dbus-daemon the sleep test is skipped; the others run.
        m_busAddress = m_bus.start();
    }
    void init()
    {
        QVERIFY(m_dir.isValid());
        auto hv = std::make_unique<FakeHypervisor>(m_clock);
        m_hv = hv.get();
        addDomain("u1", "vm1", -3'000'000'000);
        m_daemon = std::make_unique<Daemon>(config(), std::move(hv), m_clock);
        auto clockSet = std::make_unique<FakeClockSet>();
        m_clockSet = clockSet.get();
        m_daemon->setHostWatchSources(
            m_busAddress.isEmpty() ? QStringLiteral("unix:path=/nonexistent") : m_busAddress,
            std::move(clockSet));
        m_spy = std::make_unique<QSignalSpy>(m_daemon.get(), &Daemon::syncFinished);
        QCOMPARE(m_daemon->start(), QString());
        QVERIFY(m_hv->started);
        // Connected at start: every running domain is reconciled.
        const SyncResult r = next(Trigger::Reconcile);
        QCOMPARE(r.domain, std::string("vm1"));
        QCOMPARE(r.outcome, Outcome::Synced);
        QCOMPARE(r.before->offsetNs, -3'000'000'000);
    }
    void cleanup()
    {
        m_spy.reset();
        m_daemon.reset();
    }

    void eventInResultOnTheControlSocket()
    {
        addDomain("u1", "vm1", 7'000'000'000); // paused a while: 7 s ahead now
        m_hv->event("u1", {EventAction::Sync, Trigger::Resumed});
        const SyncResult r = next();
        QCOMPARE(r.trigger, Trigger::Resumed);
        QCOMPARE(r.outcome, Outcome::Synced);
        const json status = ask(request("status"));
        QVERIFY(status.value("ok", false));
        QVERIFY(status["connected"].get<bool>());
        QCOMPARE(status["domains"].size(), std::size_t(1));
        QCOMPARE(status["domains"][0]["last"]["trigger"].get<std::string>(),
                 std::string("resumed"));
        QCOMPARE(status["domains"][0]["last"]["before"]["offset_ns"].get<int64_t>(),
                 int64_t(7'000'000'000));
        const std::string metrics = ask(request("metrics")).value("text", std::string());
        QVERIFY(metrics.find("virt_clocksync_guest_offset_seconds{domain=\"vm1\"}") !=
                std::string::npos);
        QVERIFY(metrics.find("virt_clocksync_syncs_total{trigger=\"resumed\"") !=
                std::string::npos);
    }

    // A sync request is answered by a job that started after it, with the
    // error kind intact.
    void syncRequestIsAnsweredByItsOwnJob()
    {
        addDomain("u1", "vm1", 2'000'000'000);
        json req = request("sync");
        req["domains"] = {"vm1"};
        const json reply = ask(req);
        QVERIFY2(reply.value("ok", false), reply.dump().c_str());
        QCOMPARE(reply["results"].size(), std::size_t(1));
        QCOMPARE(reply["results"][0]["trigger"].get<std::string>(), std::string("request"));
        QCOMPARE(reply["results"][0]["before"]["offset_ns"].get<int64_t>(), int64_t(2'000'000'000));
        req["domains"] = {"nosuch"};
        QVERIFY(ask(req).value("error", std::string()).find("no running domain") !=
                std::string::npos);
        m_hv->fake.setAgentError("u1", qga::makeError(qga::ErrorKind::CommandDisabled, "blocked"));
        req["domains"] = {"u1"};
        const json failed = ask(req);
        QCOMPARE(failed["results"][0]["error"]["kind"].get<std::string>(),
                 std::string("command-disabled"));
    }

    // RESUMED_MIGRATED after STARTED_MIGRATED: the guest came in; without
    // it: a failed outgoing migration resumed the guest here.
    void migrationSides()
    {
        addDomain("u1", "vm1", 1'000'000'000);
        m_hv->event("u1", {EventAction::IncomingMigration, Trigger::MigratedIn});
        m_hv->event("u1", {EventAction::MigrationResumed, Trigger::MigratedIn, true});
        QCOMPARE(next().trigger, Trigger::MigratedIn);
        addDomain("u1", "vm1", 1'000'000'000);
        m_hv->event("u1", {EventAction::MigrationResumed, Trigger::MigratedIn, true});
        QCOMPARE(next().trigger, Trigger::MigrationFailed);
    }

    // Undefined (or migrated away): no status row, no metric series.
    void forgetRemovesEverything()
    {
        m_hv->event("u1", {EventAction::Forget, Trigger::Resumed});
        QVERIFY(QTest::qWaitFor([&] { return ask(request("status"))["domains"].empty(); }, 5000));
        const std::string metrics = ask(request("metrics")).value("text", std::string());
        QVERIFY(metrics.find("domain=\"vm1\"") == std::string::npos);
    }

    // A lost connection shows in the metrics; back, it reconciles (events
    // may have been lost meanwhile).
    void reconnectReconciles()
    {
        m_hv->setConnected(false);
        std::string metrics = ask(request("metrics")).value("text", std::string());
        QVERIFY(metrics.find("virt_clocksync_libvirt_connected 0") != std::string::npos);
        QVERIFY(metrics.find("virt_clocksync_libvirt_reconnects_total 1") != std::string::npos);
        addDomain("u2", "vm2", 4'000'000'000);
        m_hv->setConnected(true);
        std::map<std::string, Outcome> reconciled;
        while (reconciled.size() < 2) {
            const SyncResult r = next(Trigger::Reconcile);
            QVERIFY2(!r.domain.empty(), r.note.c_str());
            reconciled[r.domain] = r.outcome;
        }
        QCOMPARE(reconciled["vm1"], Outcome::InSync); // synced at start, untouched since
        QCOMPARE(reconciled["vm2"], Outcome::Synced); // appeared while disconnected
        metrics = ask(request("metrics")).value("text", std::string());
        QVERIFY(metrics.find("virt_clocksync_libvirt_connected 1") != std::string::npos);
    }

    // A listing of the running domains that fails is not "none run": the
    // reconcile cancels nothing and is made again; a sync --all says why.
    void failedListingIsNotAnEmptyOne()
    {
        m_daemon->setListRetryMs(50);
        m_hv->setConnected(false);
        m_hv->failListing = true;
        m_hv->setConnected(true);
        json req = request("sync");
        req["all"] = true;
        const json reply = ask(req);
        QVERIFY2(!reply.value("ok", true), reply.dump().c_str());
        QVERIFY(reply.value("error", std::string()).find("cannot list") != std::string::npos);
        QCOMPARE(ask(request("status"))["domains"].size(), std::size_t(1)); // nothing forgotten
        m_hv->failListing = false;
        const SyncResult r = next(Trigger::Reconcile); // the retry reconciles
        QCOMPARE(r.domain, std::string("vm1"));
        QVERIFY(r.ok());
    }

    // Reload: the sync defaults change at once, tracked state stays, and a
    // key that needs a restart is kept.
    void reloadKeepsTrackedState()
    {
        DaemonConfig next = config();
        next.policy.toleranceNs = 5'000'000'000; // tolerance 5 s
        next.concurrency = 9;                    // needs a restart
        const QStringList changes = m_daemon->reload(next);
        QVERIFY2(changes.contains("tolerance-us = 5000000"), qPrintable(changes.join('|')));
        QVERIFY2(changes.contains("concurrency = 9 (kept until a restart)"),
                 qPrintable(changes.join('|')));
        QCOMPARE(m_daemon->config().concurrency, DaemonConfig{}.concurrency);
        QCOMPARE(ask(request("status"))["domains"].size(), std::size_t(1));
        addDomain("u1", "vm1", 2'000'000'000); // 2 s off: within the new tolerance
        m_hv->event("u1", {EventAction::Sync, Trigger::Resumed});
        QCOMPARE(this->next().outcome, Outcome::InSync);
    }

    void journalFieldsOfAResult()
    {
        SyncResult r;
        r.domain = "web1";
        r.uuid = "u1";
        r.trigger = Trigger::Restored;
        r.outcome = Outcome::Synced;
        r.before = Measurement{-5'000'000'000, 0, 0, 5};
        r.after = Measurement{12'000, 250'000, 0, 5};
        r.attempts = 2;
        const std::vector<std::string> f = journalFields(r);
        QVERIFY(f.front().rfind("MESSAGE=web1: restored: synced", 0) == 0);
        for (const char* want : {"DOMAIN=web1", "TRIGGER=restored", "OUTCOME=synced", "ATTEMPTS=2",
                                 "OFFSET_BEFORE_NS=-5000000000", "OFFSET_AFTER_NS=12000",
                                 "PRIORITY=6", "SYSLOG_IDENTIFIER=virt-clocksyncd"})
            QVERIFY2(std::find(f.begin(), f.end(), want) != f.end(), want);
    }

    void metricsEndpoint()
    {
        MetricsServer server([] { return std::string("virt_clocksync_test 1\n"); });
        QVERIFY(server.listen("[::1]:x").contains("not HOST:PORT"));
        QCOMPARE(server.listen("127.0.0.1:0"), QString());
        const QByteArray ok = http(server.port(), "GET /metrics HTTP/1.0\r\n\r\n");
        QVERIFY2(ok.startsWith("HTTP/1.0 200 OK\r\n"), ok.constData());
        QVERIFY(ok.contains("Content-Type: text/plain; version=0.0.4"));
        QVERIFY(ok.endsWith("\r\n\r\nvirt_clocksync_test 1\n"));
        QVERIFY(http(server.port(), "GET / HTTP/1.0\r\n\r\n").startsWith("HTTP/1.0 404"));
        QVERIFY(http(server.port(), "POST /metrics HTTP/1.0\r\n\r\n").startsWith("HTTP/1.0 405"));
        // A daemon with metrics-listen serves its own metrics there.
        DaemonConfig c = config();
        c.controlSocket = m_dir.filePath("second.sock");
        c.metricsListen = "127.0.0.1:0";
        FakeClock clock;
        Daemon d(c, std::make_unique<FakeHypervisor>(clock), clock);
        QCOMPARE(d.start(), QString());
        QVERIFY(d.metricsServer());
        QVERIFY(http(d.metricsServer()->port(), "GET /metrics HTTP/1.0\r\n\r\n")
                    .contains("\nvirt_clocksync_libvirt_connected 1\n"));
    }

    // The control socket is also the single-instance lock: a daemon that
    // cannot serve it does not start (before, it ran without it, and a CLI
    // seeing no daemon synced beside it).
    void noControlSocketNoDaemon()
    {
        DaemonConfig c = config();
        c.controlSocket = QStringLiteral("/proc/virt-clocksync-test/control.sock");
        FakeClock clock;
        auto hv = std::make_unique<FakeHypervisor>(clock);
        FakeHypervisor* h = hv.get();
        Daemon d(c, std::move(hv), clock);
        QVERIFY(!d.start().isEmpty());
        QVERIFY(!h->started); // nothing synced
    }

    void shutdownStopsTheHypervisor()
    {
        m_daemon->shutdown();
        QVERIFY(m_hv->stopped);
    }
    // The watcher alone: only a set of the clock is a step, of the size the
    // clock moved, and it is re-armed after every wake-up.
    void clockStepWatcherReportsEachStep()
    {
        ClockStepWatcher w;
        auto source = std::make_unique<FakeClockSet>();
        FakeClockSet* fake = source.get();
        w.setSource(std::move(source));
        QCOMPARE(w.start(), QString());
        QSignalSpy spy(&w, &ClockStepWatcher::stepped);
        fake->wakeWithoutSet();
        QVERIFY(QTest::qWaitFor([&] { return fake->arms == 2; }, 5000));
        fake->step(2'000'000'000);
        QVERIFY(spy.wait(5000));
        QCOMPARE(spy.size(), 1);
        QCOMPARE(spy.at(0).at(0).value<int64_t>(), int64_t(2'000'000'000));
        fake->step(-5'500'000'000);
        QVERIFY(spy.wait(5000));
        QCOMPARE(spy.at(1).at(0).value<int64_t>(), int64_t(-5'500'000'000));
        QCOMPARE(fake->arms, 4); // start + one per wake-up
    }

    void hostClockStepSyncsEveryRunningGuest()
    {
        addDomain("u2", "vm2", 1'000'000'000);
        m_clockSet->step(-2'000'000'000);
        expectEveryGuestSynced(Trigger::HostClockStep, {"vm1", "vm2"});
    }

    // The metrics textfile: written with the build info, rewritten on a timer
    // (its timestamp follows the clock), moved by a reload (the old one
    // removed), and removed when the daemon stops -- a file left behind would
    // report a dead daemon alive.
    void textfileFollowsTheDaemon()
    {
        const auto read = [](const QString& path) {
            QFile f(path);
            return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
        };
        DaemonConfig c = m_daemon->config();
        c.metricsTextfile = m_dir.filePath("a.prom");
        m_daemon->reload(c);
        QVERIFY(read(c.metricsTextfile).contains("virt_clocksync_build_info{version="));
        m_daemon->setTextfileRefreshMs(20);
        m_clock.advance(90'000'000'000);
        const QString stamp = QStringLiteral("virt_clocksync_metrics_timestamp_seconds %1\n")
                                  .arg(double(m_clock.realtimeNs()) / 1e9, 0, 'f', 3);
        QVERIFY(QTest::qWaitFor([&] { return read(c.metricsTextfile).contains(stamp); }, 5000));
        const QString first = c.metricsTextfile;
        c.metricsTextfile = m_dir.filePath("b.prom");
        m_daemon->reload(c);
        QVERIFY(!QFile::exists(first));
        QVERIFY(QFile::exists(c.metricsTextfile));
        m_daemon->shutdown();
        QVERIFY(!QFile::exists(c.metricsTextfile));
    }

#ifdef HAVE_LIBSYSTEMD
    // The watcher alone, on a private bus: only logind's PrepareForSleep(false)
    // is a wake-up; going to sleep and an impostor's signal are not.
    void sleepWatcherHearsOnlyLogindWaking()
    {
        if (m_busAddress.isEmpty())
            CLOCKSYNC_SKIP("no dbus-daemon to play logind on");
        SleepWatcher w;
        w.setBusAddress(m_busAddress);
        QCOMPARE(w.start(), QString());
        QSignalSpy spy(&w, &SleepWatcher::hostResumed);
        FakeLogind impostor, logind;
        QVERIFY(impostor.open(m_busAddress, false));
        QVERIFY(logind.open(m_busAddress, true));
        QVERIFY(impostor.prepareForSleep(false));
        QVERIFY(logind.prepareForSleep(true));
        QVERIFY(logind.prepareForSleep(false));
        QVERIFY(spy.wait(5000));
        QCOMPARE(spy.size(), 1);
    }

    void hostWakeSyncsEveryRunningGuest()
    {
        if (m_busAddress.isEmpty())
            CLOCKSYNC_SKIP("no dbus-daemon to play logind on");
        addDomain("u2", "vm2", 1'000'000'000);
        FakeLogind logind;
        QVERIFY(logind.open(m_busAddress, true));
        QVERIFY(logind.prepareForSleep(false));
        expectEveryGuestSynced(Trigger::HostWake, {"vm1", "vm2"});
    }
#endif
};

QTEST_GUILESS_MAIN(TestDaemon)
#include "tst_daemon.moc"
