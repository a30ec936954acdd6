// SPDX-License-Identifier: Apache-2.0
// SocketAgent against a scripted fake QGA server: handshake, stale replies,
// timeouts, garbage, oversize replies, disconnects and reconnects. Every
// failure must come back as an error within the call's deadline.
#include "fakeqgaserver.h"
#include "socketagent.h"

#include <QTemporaryDir>
#include <QTest>

#include <chrono>

using namespace qga;
using namespace std::chrono_literals;
using Action = FakeQgaServer::Action;

class TestSocketAgent : public QObject
{
    Q_OBJECT
    QTemporaryDir m_dir;
    std::unique_ptr<FakeQgaServer> m_server;

    std::string path() const { return m_dir.filePath("qga.sock").toStdString(); }

private slots:
    void init()
    {
        m_server = std::make_unique<FakeQgaServer>(path());
        QVERIFY(m_server->start());
    }
    void cleanup() { m_server.reset(); }

    void pingInfoTime()
    {
        SocketAgent agent(path(), SystemClock::instance(), 2000ms);
        QVERIFY(agent.ping().ok());
        Expected<AgentInfo> info = agent.info();
        QVERIFY(info);
        QVERIFY(info->supports("guest-get-time"));
        QVERIFY(!info->supports("guest-set-time"));
        Expected<TimeSample> s = agent.getTime();
        QVERIFY(s);
        QVERIFY(s->rttNs() >= 0);
        // The fake answers with the host clock: the offset is inside the round trip.
        QVERIFY(std::llabs(s->offsetNs()) <= s->rttNs());
        QCOMPARE(agent.handshakes(), 1); // one connection, one handshake
        QCOMPARE(m_server->connectionsAccepted(), 1);
    }

    void unreachableSocket()
    {
        SocketAgent agent(m_dir.filePath("nothing-here").toStdString(), SystemClock::instance(),
                          500ms);
        Expected<void> r = agent.ping();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::AgentUnavailable);
    }

    void staleRepliesBeforeSyncAreDiscarded()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-sync-delimited")
                return {Action::Reply,
                        "{\"return\": 999}\n{\"return\": {}}\ngarbage\n\xff{\"return\": " +
                            FakeQgaServer::syncIdOf(line) + "}\n"};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 2000ms);
        QVERIFY(agent.getTime().ok());
        QCOMPARE(agent.handshakes(), 1);
    }

    void wrongSyncIdTimesOut()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-sync-delimited")
                return {Action::Reply, "\xff{\"return\": 1}\n"};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 300ms);
        Expected<TimeSample> r = agent.getTime();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Timeout);
    }

    void noReplyTimesOutThenReconnects()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-get-time")
                return {Action::NoReply, {}};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 300ms);
        auto t0 = std::chrono::steady_clock::now();
        Expected<TimeSample> r = agent.getTime();
        auto took = std::chrono::steady_clock::now() - t0;
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Timeout);
        QVERIFY(took < 5s); // bounded by the deadline, not hanging
        m_server->setScript(&FakeQgaServer::defaultAction);
        QVERIFY(agent.getTime().ok());
        QCOMPARE(agent.handshakes(), 2); // the failure forced a fresh handshake
    }

    void lateReplyIsNotMistakenForTheNextOne()
    {
        // The first get-time reply is held until after the client timed out;
        // it then arrives on the old connection, which the client dropped.
        bool first = true;
        m_server->setScript([&first](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-get-time" && first) {
                first = false;
                return {Action::HoldThenReply, "{\"return\": 12345}\n"};
            }
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 300ms);
        QVERIFY(!agent.getTime());
        m_server->release();
        Expected<TimeSample> r = agent.getTime();
        QVERIFY(r);
        QVERIFY(r->guestNs != 12345);
    }

    void garbageReply()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-get-time")
                return {Action::Reply, "this is not json\n"};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 1000ms);
        Expected<TimeSample> r = agent.getTime();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Protocol);
    }

    void oversizeReply()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-get-time")
                return {Action::Reply, std::string(200 * 1024, '7')}; // no newline, endless digits
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 2000ms);
        Expected<TimeSample> r = agent.getTime();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Protocol);
        QVERIFY(r.error().message.find("64 KiB") != std::string::npos);
    }

    void disconnectMidReply()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-get-time")
                return {Action::Close, {}};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 1000ms);
        Expected<TimeSample> r = agent.getTime();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Transport);
    }

    void agentErrorsAreTyped()
    {
        m_server->setScript([](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-set-time")
                return {Action::Reply,
                        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"The command "
                        "guest-set-time has been disabled for this instance\"}}\n"};
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 1000ms);
        Expected<void> r = agent.setTime(1'700'000'000'000'000'000);
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::CommandDisabled);
        // An agent error is a valid reply: the connection stays up.
        QVERIFY(agent.ping().ok());
        QCOMPARE(agent.handshakes(), 1);
    }

    void setTimeSendsNanoseconds()
    {
        std::string seen;
        m_server->setScript([&seen](const std::string& cmd, const std::string& line) -> Action {
            if (cmd == "guest-set-time")
                seen = line;
            return FakeQgaServer::defaultAction(cmd, line);
        });
        SocketAgent agent(path(), SystemClock::instance(), 1000ms);
        QVERIFY(agent.setTime(1'700'000'000'123'456'789).ok());
        QVERIFY(seen.find("\"time\":1700000000123456789") != std::string::npos);
        QVERIFY(agent.setTimeFromRtc().ok());
    }
};

QTEST_GUILESS_MAIN(TestSocketAgent)
#include "tst_socketagent.moc"
