// SPDX-License-Identifier: Apache-2.0
// Control protocol and server: good, malformed, oversize and unknown requests;
// a silent client does not block others; another uid is refused. Also the
// metrics format (parsed back) and check-host on fixture /proc/cpuinfo text.
#include "controlclient.h"
#include "controlserver.h"
#include "guesthealth.h"
#include "hostcheck.h"
#include "metrics.h"
#include "skip.h"
#include "unixclient.h"

#include <cstring>
#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <grp.h>
#include <map>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace clocksync;
using nlohmann::json;

namespace {

int connectTo(const QString& path)
{
    return connectUnix(path);
}

void sendAll(int fd, const std::string& s)
{
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        done += std::size_t(n);
    }
}

// Reads one line, running the Qt event loop (the server lives on it) until
// it arrives or the deadline passes. Returns "" on EOF/timeout.
std::string readLine(int fd, int timeoutMs = 5000)
{
    static std::map<int, std::string> buffers; // bytes after the last line, per fd
    std::string& in = buffers[fd];
    QDeadlineTimer deadline(timeoutMs);
    while (!deadline.hasExpired()) {
        if (const auto nl = in.find('\n'); nl != std::string::npos) {
            std::string line = in.substr(0, nl);
            in.erase(0, nl + 1);
            return line;
        }
        QCoreApplication::processEvents(QEventLoop::AllEvents, 10);
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0)
            continue;
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof(buf)); // sockets and pipes alike
        if (n <= 0) {
            buffers.erase(fd);
            return {};
        }
        in.append(buf, std::size_t(n));
    }
    return {};
}

} // namespace

class TestControl : public QObject
{
    Q_OBJECT
    QTemporaryDir m_dir;

    std::unique_ptr<ControlServer> makeServer()
    {
        auto s = std::make_unique<ControlServer>(m_dir.filePath("control.sock"), std::nullopt);
        s->setHandler([](const ControlRequest& req, ControlServer::Reply reply) {
            json j = controlOk();
            j["echo"] = controlCommandName(req.command);
            reply(j);
        });
        return s;
    }

private slots:
    // Only "nobody listens" (no socket, or a socket nobody accepts on) lets
    // the CLI act itself; any other failure to connect -- permission denied
    // for a user outside the control-group, here a path too long -- is not
    // an absence, or the CLI would sync beside a running daemon.
    void onlyAnAbsentDaemonLetsTheCliActItself()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const nlohmann::json req = clocksync::cli::daemonRequest("ping");
        const auto none = clocksync::cli::callDaemon(dir.filePath("none.sock"), req, 1000);
        QVERIFY(!none.reachable);
        QVERIFY(none.absent);
        // A socket file nobody listens on (a daemon that died): refused.
        const QString stale = dir.filePath("stale.sock");
        {
            const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::strcpy(a.sun_path, stale.toLocal8Bit().constData());
            QCOMPARE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            ::close(fd);
        }
        const auto refused = clocksync::cli::callDaemon(stale, req, 1000);
        QVERIFY(!refused.reachable);
        QVERIFY(refused.absent);
        const auto odd = clocksync::cli::callDaemon(QString(200, 'x'), req, 1000);
        QVERIFY(!odd.reachable);
        QVERIFY(!odd.absent);
        QVERIFY(!clocksync::cli::unreachable(odd).contains("is virt-clocksyncd running"));
    }

    void parse_data()
    {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<bool>("ok");
        QTest::newRow("status") << QByteArray("{\"version\":1,\"command\":\"status\"}") << true;
        QTest::newRow("sync")
            << QByteArray("{\"version\":1,\"command\":\"sync\",\"domains\":[\"a\",\"b\"]}") << true;
        QTest::newRow("sync-all") << QByteArray("{\"version\":1,\"command\":\"sync\",\"all\":true}")
                                  << true;
        QTest::newRow("no-version") << QByteArray("{\"command\":\"status\"}") << false;
        QTest::newRow("version-2") << QByteArray("{\"version\":2,\"command\":\"status\"}") << false;
        QTest::newRow("unknown") << QByteArray("{\"version\":1,\"command\":\"reboot-host\"}")
                                 << false;
        QTest::newRow("not-json") << QByteArray("status please") << false;
        QTest::newRow("array") << QByteArray("[1]") << false;
        QTest::newRow("domains-not-array")
            << QByteArray("{\"version\":1,\"command\":\"sync\",\"domains\":\"a\"}") << false;
        QTest::newRow("domain-not-string")
            << QByteArray("{\"version\":1,\"command\":\"sync\",\"domains\":[1]}") << false;
        QTest::newRow("all-not-bool")
            << QByteArray("{\"version\":1,\"command\":\"sync\",\"all\":\"yes\"}") << false;
        QTest::newRow("command-number") << QByteArray("{\"version\":1,\"command\":7}") << false;
    }
    void parse()
    {
        QFETCH(QByteArray, line);
        QFETCH(bool, ok);
        auto r = parseControlRequest(line.toStdString());
        QCOMPARE(r.ok(), ok);
        if (!ok)
            QVERIFY(!r.error().message.empty());
    }

    void oversizeParse()
    {
        std::string big =
            "{\"version\":1,\"command\":\"status\",\"x\":\"" + std::string(70000, 'a') + "\"}";
        QVERIFY(!parseControlRequest(big));
    }

    // A second server on the same path is refused and leaves the first one's
    // socket alone; once the first is gone, the path can be served again.
    void secondInstanceIsRefused()
    {
        auto first = makeServer();
        QCOMPARE(first->listen(), QString());
        QVERIFY(!first->anotherInstance());
        auto second = makeServer();
        const QString err = second->listen();
        QVERIFY(second->anotherInstance());
        QVERIFY2(err.contains(QStringLiteral("pid %1").arg(::getpid())), qPrintable(err));
        second.reset(); // must not unlink the first one's socket
        const int fd = connectTo(first->path());
        QVERIFY(fd >= 0);
        sendAll(fd, "{\"version\":1,\"command\":\"ping\"}\n");
        QCOMPARE(json::parse(readLine(fd))["ok"].get<bool>(), true);
        ::close(fd);
        first.reset();
        auto third = makeServer();
        QCOMPARE(third->listen(), QString());
    }

    // Regression: a client that stops reading (its replies fail with EPIPE and
    // drop it) while more of its requests are queued. The server used to go on
    // parsing the dropped client's buffer (use after free; ASan sees it).
    void clientGoneBetweenQueuedRequests()
    {
        auto server = makeServer();
        QCOMPARE(server->listen(), QString());
        const int fd = connectTo(server->path());
        QVERIFY(fd >= 0);
        QTRY_COMPARE_WITH_TIMEOUT(server->clients(), 1, 5000);
        sendAll(fd, "garbage\ngarbage\ngarbage\n");
        QVERIFY(::shutdown(fd, SHUT_RD) == 0); // the first reply gets EPIPE
        QTRY_COMPARE_WITH_TIMEOUT(server->clients(), 0, 5000);
        ::close(fd);
        const int other = connectTo(server->path());
        sendAll(other, "{\"version\":1,\"command\":\"ping\"}\n");
        QCOMPARE(json::parse(readLine(other))["ok"].get<bool>(), true);
        ::close(other);
    }

    // A client that sends requests without reading the replies: the server
    // stops reading it at ~1 MiB of unread replies (its memory stays bounded,
    // the writer blocks), and once the client reads, every reply arrives.
    void writerThatDoesNotReadIsPaused()
    {
        auto server = makeServer();
        const std::string big(1000, 'x');
        server->setHandler([&big](const ControlRequest&, ControlServer::Reply reply) {
            json j = controlOk();
            j["pad"] = big;
            reply(j);
        });
        QCOMPARE(server->listen(), QString());
        const int fd = connectTo(server->path());
        QVERIFY(fd >= 0);
        constexpr int kRequests = 20'000; // 660 KB of requests (more than the socket
                                          // buffers), 20 MB of replies
        std::atomic<int> written{0};
        std::thread writer;
        auto cleanup = qScopeGuard([&] {
            ::shutdown(fd, SHUT_RDWR); // unblocks the writer if a check failed
            if (writer.joinable())
                writer.join();
            ::close(fd);
        });
        writer = std::thread([&] {
            const std::string req = "{\"version\":1,\"command\":\"ping\"}\n";
            for (int i = 0; i < kRequests; ++i) {
                sendAll(fd, req);
                written = i + 1;
            }
        });
        QTRY_VERIFY_WITH_TIMEOUT(server->pendingReplyBytes() > ControlServer::kMaxPendingReplies,
                                 10000);
        // Paused: more events change nothing, the writer is held by the socket.
        std::size_t peak = 0;
        for (int i = 0; i < 50; ++i) {
            QCoreApplication::processEvents(QEventLoop::AllEvents, 10);
            peak = std::max(peak, server->pendingReplyBytes());
        }
        QVERIFY2(peak <= ControlServer::kMaxPendingReplies + 2 * (big.size() + 100),
                 qPrintable(QString::number(peak)));
        QVERIFY(written.load() < kRequests);
        int replies = 0;
        while (replies < kRequests) {
            const std::string l = readLine(fd, 20000);
            QVERIFY2(!l.empty(), qPrintable(QStringLiteral("reply %1 missing").arg(replies)));
            ++replies;
        }
        writer.join();
        QCOMPARE(written.load(), kRequests);
    }

    void tooManyClientsAreTurnedAway()
    {
        auto server = makeServer();
        QCOMPARE(server->listen(), QString());
        std::vector<int> fds;
        for (std::size_t i = 0; i < ControlServer::kMaxControlClients; ++i) {
            fds.push_back(connectTo(server->path())); // blocks once the backlog (16) is full:
            QTRY_COMPARE_WITH_TIMEOUT(std::size_t(server->clients()), i + 1, 5000); // accept each
        }
        const int extra = connectTo(server->path());
        const json r = json::parse(readLine(extra));
        QCOMPARE(r["ok"].get<bool>(), false);
        QCOMPARE(r["error"].get<std::string>(), std::string("too many clients"));
        ::close(extra);
        // The ones already in are served.
        sendAll(fds[0], "{\"version\":1,\"command\":\"ping\"}\n");
        QCOMPARE(json::parse(readLine(fds[0]))["ok"].get<bool>(), true);
        for (int fd : fds)
            ::close(fd);
        QTRY_COMPARE_WITH_TIMEOUT(server->clients(), 0, 5000);
    }

    void serverAnswersAndSurvivesGarbage()
    {
        auto server = makeServer();
        QCOMPARE(server->listen(), QString());
        const int fd = connectTo(server->path());
        QVERIFY(fd >= 0);
        sendAll(fd, "{\"version\":1,\"command\":\"ping\"}"
                    "\n");
        json r = json::parse(readLine(fd));
        QCOMPARE(r["ok"].get<bool>(), true);
        QCOMPARE(r["echo"].get<std::string>(), std::string("ping"));
        // 1000 malformed requests in a row: each gets an error, the server keeps serving.
        std::string burst;
        for (int i = 0; i < 1000; ++i)
            burst += (i % 2 ? "garbage\n"
                            : "{\"version\":1,\"command\":\"nope\"}"
                              "\n");
        sendAll(fd, burst);
        int errors = 0;
        while (errors < 1000) {
            const std::string l = readLine(fd);
            QVERIFY2(!l.empty(), "server stopped answering");
            QCOMPARE(json::parse(l)["ok"].get<bool>(), false);
            ++errors;
        }
        sendAll(fd, "{\"version\":1,\"command\":\"status\"}"
                    "\n");
        QCOMPARE(json::parse(readLine(fd))["echo"].get<std::string>(), std::string("status"));
        ::close(fd);
    }

    void oversizeRequestIsRefusedAndClosed()
    {
        auto server = makeServer();
        QCOMPARE(server->listen(), QString());
        const int fd = connectTo(server->path());
        sendAll(fd, std::string(100 * 1024, 'x'));
        json r = json::parse(readLine(fd));
        QCOMPARE(r["ok"].get<bool>(), false);
        QVERIFY(r["error"].get<std::string>().find("64 KiB") != std::string::npos);
        QCOMPARE(readLine(fd, 2000), std::string()); // closed
        ::close(fd);
    }

    void silentClientDoesNotBlockOthersAndTimesOut()
    {
        auto server = makeServer();
        server->setIdleTimeoutMs(300);
        QCOMPARE(server->listen(), QString());
        const int silent = connectTo(server->path());
        QVERIFY(silent >= 0);
        const int other = connectTo(server->path());
        sendAll(other, "{\"version\":1,\"command\":\"ping\"}"
                       "\n");
        QCOMPARE(json::parse(readLine(other))["ok"].get<bool>(), true);
        // The silent client is hung up on (EOF), not kept forever.
        QTRY_COMPARE_WITH_TIMEOUT(server->clients(), 0, 5000);
        char c;
        QCOMPARE(::recv(silent, &c, 1, MSG_DONTWAIT), ssize_t(0));
        ::close(silent);
        ::close(other);
    }

    // A request whose answer takes longer than the idle timeout (a sync that
    // waits for a reconnecting agent) keeps its client; after the answer the
    // idle timeout counts again.
    void slowAnswerOutlivesTheIdleTimeout()
    {
        auto server = makeServer();
        server->setIdleTimeoutMs(100);
        std::vector<ControlServer::Reply> held;
        server->setHandler([&held](const ControlRequest&, ControlServer::Reply reply) {
            held.push_back(std::move(reply));
        });
        QCOMPARE(server->listen(), QString());
        const int fd = connectTo(server->path());
        sendAll(fd, "{\"version\":1,\"command\":\"sync\",\"all\":true}\n");
        QTRY_COMPARE_WITH_TIMEOUT(held.size(), std::size_t(1), 5000);
        // Ten idle timeouts pass without an answer: the client must still be there.
        QVERIFY(!QTest::qWaitFor([&] { return server->clients() == 0; }, 1000));
        held[0](controlOk());
        QCOMPARE(json::parse(readLine(fd))["ok"].get<bool>(), true);
        QTRY_COMPARE_WITH_TIMEOUT(server->clients(), 0, 5000);
        ::close(fd);
    }

    void otherUidIsRefused()
    {
        if (::geteuid() != 0)
            CLOCKSYNC_SKIP("needs root to connect as another uid");
        auto server = makeServer();
        QCOMPARE(server->listen(), QString());
        // The socket is 0660 in a 0700 dir: make it reachable for the test only,
        // so that what refuses the stranger is the credential check.
        ::chmod(m_dir.path().toLocal8Bit().constData(), 0755);
        ::chmod(server->path().toLocal8Bit().constData(), 0666);
        int pipefd[2];
        QVERIFY(::pipe(pipefd) == 0);
        const pid_t pid = ::fork();
        if (pid == 0) {
            // Child: become nobody, connect, forward the reply line to the parent.
            if (::setgid(65534) != 0 || ::setuid(65534) != 0)
                ::_exit(2);
            const int fd = connectTo(server->path());
            if (fd < 0)
                ::_exit(3);
            sendAll(fd, "{\"version\":1,\"command\":\"status\"}"
                        "\n");
            char buf[512];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
                (void)!::write(pipefd[1], buf, std::size_t(n));
            ::_exit(0);
        }
        ::close(pipefd[1]);
        const std::string reply = readLine(pipefd[0], 10000);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ::close(pipefd[0]);
        QVERIFY2(!reply.empty(),
                 qPrintable(QStringLiteral("no reply for the other uid (child exit %1)")
                                .arg(WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
        json r = json::parse(reply);
        QCOMPARE(r["ok"].get<bool>(), false);
        QVERIFY(r["error"].get<std::string>().find("permission denied") != std::string::npos);
    }

    void peerRules()
    {
        QVERIFY(ControlServer::peerAllowed(0, 0, std::nullopt));
        QVERIFY(ControlServer::peerAllowed(::geteuid(), 12345, std::nullopt));
        const uid_t stranger = ::geteuid() == 4242 ? 4243 : 4242;
        QVERIFY(!ControlServer::peerAllowed(stranger, 4242, std::nullopt));
        QVERIFY(ControlServer::peerAllowed(stranger, 4242, gid_t(4242))); // primary group
        QVERIFY(!ControlServer::peerAllowed(stranger, 4242, gid_t(4343)));
        // Supplementary groups: the peer's own, as the kernel had them at
        // connect (SO_PEERGROUPS) -- not an NSS look-up of its user. A child
        // (root may setgroups) makes a socket pair with groups 4343 and 4344;
        // its other end must report them, and let it in for group 4343.
        QVERIFY(ControlServer::peerAllowed(stranger, 4242, gid_t(4343), {4344, 4343}));
        QVERIFY(!ControlServer::peerAllowed(stranger, 4242, gid_t(4343), {4344}));
        if (::geteuid() != 0)
            QSKIP("setgroups needs root");
        const pid_t child = ::fork();
        if (child == 0) {
            const gid_t mine[] = {4343, 4344};
            int sv[2];
            if (::setgroups(2, mine) < 0 || ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
                ::_exit(2);
            const std::vector<gid_t> seen = ControlServer::peerGroups(sv[0]);
            ::_exit(std::find(seen.begin(), seen.end(), gid_t(4343)) != seen.end() &&
                            ControlServer::peerAllowed(stranger, 4242, gid_t(4343), seen)
                        ? 0
                        : 1);
        }
        int status = -1;
        ::waitpid(child, &status, 0);
        QVERIFY(WIFEXITED(status));
        QCOMPARE(WEXITSTATUS(status), 0);
    }

    void resultJsonRoundTrip()
    {
        SyncResult r;
        r.domain = "vm";
        r.uuid = "u";
        r.trigger = Trigger::Restored;
        r.outcome = Outcome::Approximate;
        r.before = Measurement{-5'000'000'000, 300'000, 600'000, 5};
        r.after = Measurement{120'000, 250'000, 500'000, 7};
        r.attempts = 3;
        r.error = qga::makeError(qga::ErrorKind::Timeout, "slow");
        r.configProblem = true;
        r.nextBootPolicy = "<policy mode=\"off\"/>";
        SyncResult b = resultFromJson(resultToJson(r));
        QVERIFY(b.configProblem);
        QCOMPARE(b.nextBootPolicy, r.nextBootPolicy);
        QVERIFY(!resultFromJson(resultToJson(SyncResult{})).nextBootPolicy);
        QCOMPARE(b.domain, r.domain);
        QCOMPARE(b.trigger, r.trigger);
        QCOMPARE(b.outcome, r.outcome);
        QCOMPARE(b.before->offsetNs, r.before->offsetNs);
        QCOMPARE(b.after->samples, 7);
        QCOMPARE(b.attempts, 3);
        QCOMPARE(b.error->message, std::string("slow"));
        QVERIFY(!resultFromJson(json("garbage")).before);
        // Every error kind survives the trip (the CLI's exit code depends on it).
        for (int k = 0; k <= int(qga::ErrorKind::Internal); ++k) {
            r.error = qga::makeError(qga::ErrorKind(k), "e");
            QCOMPARE(int(resultFromJson(resultToJson(r)).error->kind), k);
        }
        json unknownKind = resultToJson(r);
        unknownKind["error"]["kind"] = "from-a-newer-daemon";
        QCOMPARE(resultFromJson(unknownKind).error->kind, qga::ErrorKind::Internal);
    }

    void metricsParseBack()
    {
        Metrics m;
        SyncResult r;
        r.trigger = Trigger::Resumed;
        r.outcome = Outcome::Synced;
        r.before = Measurement{-5'000'000'000, 0, 0, 5};
        r.after = Measurement{30'000, 0, 0, 5};
        r.attempts = 2;
        r.latencyNs = 40'000'000;
        r.coarseLatencyNs = 12'000'000;
        r.domain = "vm";
        r.finishedAtNs = 1'800'000'000'123'000'000;
        m.record(r);
        r.finishedAtNs = 1'800'000'060'000'000'000; // a minute later, failed
        r.outcome = Outcome::Failed;
        r.error = qga::makeError(qga::ErrorKind::AgentUnavailable, "x");
        m.record(r);
        m.setConnected(true);
        m.setGuests(3, 1);
        m.setTolerance("vm", 250'000);
        const int64_t now = 1'800'000'061'500'000'000;
        const QString text = QString::fromStdString(m.render(now));
        const QRegularExpression sample(
            "^([a-z_]+)(\\{([a-z_]+=\"[^\"]*\")(,[a-z_]+=\"[^\"]*\")*\\})? (-?[0-9.e+-]+|\\+Inf)$");
        QMap<QString, double> values;
        for (const QString& line : text.split('\n', Qt::SkipEmptyParts)) {
            if (line.startsWith("# HELP ") || line.startsWith("# TYPE "))
                continue;
            auto match = sample.match(line);
            QVERIFY2(match.hasMatch(), qPrintable("not Prometheus text: " + line));
            values[line.section(' ', 0, 0)] = line.section(' ', 1).toDouble();
        }
        QCOMPARE(values.value("virt_clocksync_syncs_total{trigger=\"resumed\",result=\"synced\"}"),
                 1.0);
        // Series that never counted exist, at 0 (increase() sees a first one).
        for (const char* k :
             {"virt_clocksync_syncs_total{trigger=\"rtc-changed\",result=\"failed\"}",
              "virt_clocksync_syncs_total{trigger=\"resumed\",result=\"drifted\"}",
              "virt_clocksync_errors_total{kind=\"internal\"}"}) {
            QVERIFY2(values.contains(k), k);
            QCOMPARE(values.value(k), 0.0);
        }
        QCOMPARE(values.value("virt_clocksync_errors_total{kind=\"agent-unavailable\"}"), 1.0);
        QCOMPARE(values.value("virt_clocksync_residual_seconds_bucket{le=\"5e-05\"}"), 2.0);
        QCOMPARE(values.value("virt_clocksync_residual_seconds_bucket{le=\"2.5e-05\"}"), 0.0);
        QCOMPARE(values.value("virt_clocksync_residual_seconds_count"), 2.0);
        QCOMPARE(values.value("virt_clocksync_latency_seconds_count"),
                 1.0); // failures have no latency
        QCOMPARE(values.value("virt_clocksync_coarse_latency_seconds_count"), 1.0); // nor phase 1's
        QCOMPARE(values.value("virt_clocksync_coarse_latency_seconds_bucket{le=\"0.01\"}"), 0.0);
        QCOMPARE(values.value("virt_clocksync_coarse_latency_seconds_bucket{le=\"0.025\"}"), 1.0);
        QCOMPARE(values.value("virt_clocksync_libvirt_connected"), 1.0);
        QCOMPARE(values.value("virt_clocksync_guests_tracked"), 3.0);
        QCOMPARE(values.value("virt_clocksync_guests_pending"), 1.0);
        QCOMPARE(values.value("virt_clocksync_build_info{version=\"" VIRT_CLOCKSYNC_VERSION "\"}"),
                 1.0);
        QCOMPARE(values.value("virt_clocksync_metrics_timestamp_seconds"), 1'800'000'061.5);
        QCOMPARE(values.value("virt_clocksync_guest_tolerance_seconds{domain=\"vm\"}"), 250e-6);
        // The last success stays at the synced result; the last attempt moved on.
        QCOMPARE(values.value("virt_clocksync_last_success_timestamp_seconds{domain=\"vm\"}"),
                 1'800'000'000.123);
        QCOMPARE(values.value("virt_clocksync_last_attempt_timestamp_seconds{domain=\"vm\"}"),
                 1'800'000'060.0);
        QCOMPARE(values.value("virt_clocksync_guest_offset_seconds{domain=\"vm\"}"), 30e-6);
        Metrics gone = m;
        gone.forget("vm");
        QVERIFY(gone.render(now).find("domain=\"vm\"") == std::string::npos);
        QTemporaryDir dir;
        const QString path = dir.filePath("clocksync.prom");
        QCOMPARE(m.writeTextfile(path, now), QString());
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()), text);
    }

    void guestHealthFixtures()
    {
        GuestHealth good =
            parseGuestHealth("clocksource=kvm-clock\navailable=kvm-clock tsc acpi_pm\n"
                             "ptp_kvm=yes\nptp_device=/dev/ptp0\ntime_daemon=chronyd\n"
                             "chrony_leap=Normal\n");
        QVERIFY2(good.advice.isEmpty(), qPrintable(good.advice.join('\n')));
        QCOMPARE(good.facts.value("time_daemon"), QStringList{"chronyd"});

        GuestHealth tcg = parseGuestHealth("clocksource=tsc\navailable=tsc acpi_pm\nptp_kvm=no\n");
        QCOMPARE(tcg.advice.size(), 3); // no kvm-clock, no time daemon, no ptp_kvm
        QVERIFY(tcg.advice.join(' ').contains("kvm-clock"));
        QVERIFY(tcg.advice.join(' ').contains("refclock PHC /dev/ptp0"));

        GuestHealth wrong =
            parseGuestHealth("clocksource=hpet\navailable=kvm-clock hpet\nptp_kvm=yes\n"
                             "time_daemon=systemd-timesyncd\nntp_synchronized=no\n");
        QVERIFY(wrong.advice.join(' ').contains("although kvm-clock is available"));
        QVERIFY(wrong.advice.join(' ').contains("no /dev/ptp"));
        QVERIFY(wrong.advice.join(' ').contains("not synchronised"));
    }

    void checkHostFixtures()
    {
        HostCheck good;
        parseCpuinfo("processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n\n"
                     "processor\t: 1\nflags\t\t: fpu\n",
                     good);
        QVERIFY(good.constantTsc);
        QVERIFY(good.nonstopTsc);
        good.clocksource = "tsc";
        good.ntpSynchronised = true;
        adviseOn(good);
        QVERIFY(good.advice.isEmpty());

        HostCheck old;
        parseCpuinfo("processor\t: 0\nflags\t\t: fpu tsc\n", old);
        QVERIFY(!old.constantTsc);
        QVERIFY(!old.nonstopTsc);
        old.clocksource = "hpet";
        old.ntpSynchronised = false;
        adviseOn(old);
        QCOMPARE(old.advice.size(), 4);
        QVERIFY(old.advice.join(' ').contains("constant_tsc"));
        QVERIFY(old.advice.join(' ').contains("hpet"));
        QVERIFY(old.advice.join(' ').contains("NTP"));

        // A whole fixture tree, as check-host reads it.
        QTemporaryDir root;
        QDir().mkpath(root.filePath("proc"));
        QDir().mkpath(root.filePath("sys/devices/system/clocksource/clocksource0"));
        auto write = [&](const QString& rel, const QByteArray& data) {
            QFile f(root.filePath(rel));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(data);
        };
        write("proc/cpuinfo", "flags\t: constant_tsc nonstop_tsc\n");
        write("sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock\n");
        write("sys/devices/system/clocksource/clocksource0/available_clocksource",
              "kvm-clock tsc hpet\n");
        HostCheck c = checkHost(root.path());
        QCOMPARE(c.clocksource, QString("kvm-clock"));
        QCOMPARE(c.availableClocksources.size(), 3);
        QVERIFY(c.advice.isEmpty());
        // libvirt-guests' SYNC_TIME=1 undoes a verified sync: advice names the file.
        QDir().mkpath(root.filePath("etc/sysconfig"));
        write("etc/sysconfig/libvirt-guests", "# SYNC_TIME=0\nON_BOOT=start\nSYNC_TIME=1\n");
        c = checkHost(root.path());
        QCOMPARE(c.advice.size(), 1);
        QVERIFY(c.advice[0].startsWith("/etc/sysconfig/libvirt-guests sets SYNC_TIME=1"));
    }

    void syncTimeParsing()
    {
        QVERIFY(syncTimeEnabled("SYNC_TIME=1\n"));
        QVERIFY(syncTimeEnabled("export SYNC_TIME=\"1\" # after restore\n"));
        QVERIFY(!syncTimeEnabled("#SYNC_TIME=1\n"));
        QVERIFY(!syncTimeEnabled("SYNC_TIME=1\nSYNC_TIME=0\n")); // the last one wins
        QVERIFY(!syncTimeEnabled("SYNC_TIME=\n"));
        QVERIFY(!syncTimeEnabled(""));
    }
};

QTEST_GUILESS_MAIN(TestControl)
#include "tst_control.moc"
