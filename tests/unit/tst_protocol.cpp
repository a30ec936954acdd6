// SPDX-License-Identifier: Apache-2.0
// QGA codec: valid replies and every kind of malformed guest input.
#include "protocol.h"

#include <QTest>

using namespace qga;

class TestProtocol : public QObject
{
    Q_OBJECT
private slots:
    void requests()
    {
        QCOMPARE(protocol::commandRequest("guest-ping"),
                 std::string("{\"execute\":\"guest-ping\"}\n"));
        QCOMPARE(
            protocol::setTimeRequest(1700000000123456789),
            std::string("{\"arguments\":{\"time\":1700000000123456789},\"execute\":\"guest-set-"
                        "time\"}\n"));
        QCOMPARE(protocol::setTimeFromRtcRequest(),
                 std::string("{\"execute\":\"guest-set-time\"}\n"));
        std::string d = protocol::syncDelimitedRequest(42);
        QCOMPARE(d.front(), '\xff');
        QVERIFY(d.find("\"guest-sync-delimited\"") != std::string::npos);
        QVERIFY(d.find("\"id\":42") != std::string::npos);
        QVERIFY(protocol::syncRequest(7).find("\"guest-sync\"") != std::string::npos);
    }

    void getTime_data()
    {
        QTest::addColumn<QByteArray>("reply");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<qint64>("ns");
        QTest::addColumn<int>("kind");
        auto P = int(ErrorKind::Protocol);
        QTest::newRow("valid") << QByteArray("{\"return\": 1700000000123456789}") << true
                               << qint64(1700000000123456789) << 0;
        QTest::newRow("delimited") << QByteArray("\xff{\"return\": 5}") << true << qint64(5) << 0;
        QTest::newRow("zero") << QByteArray("{\"return\": 0}") << true << qint64(0) << 0;
        // before 1970: a wrong clock, still a time the daemon must be able to correct
        QTest::newRow("negative") << QByteArray("{\"return\": -1}") << true << qint64(-1) << 0;
        QTest::newRow("overflow") << QByteArray("{\"return\": 18446744073709551615}") << false
                                  << qint64(0) << P;
        QTest::newRow("huge") << QByteArray("{\"return\": 1e400}") << false << qint64(0) << P;
        QTest::newRow("float") << QByteArray("{\"return\": 1.5}") << false << qint64(0) << P;
        QTest::newRow("string") << QByteArray("{\"return\": \"1700000000\"}") << false << qint64(0)
                                << P;
        QTest::newRow("null") << QByteArray("{\"return\": null}") << false << qint64(0) << P;
        QTest::newRow("missing") << QByteArray("{\"retrun\": 1}") << false << qint64(0) << P;
        QTest::newRow("not-object") << QByteArray("[1,2]") << false << qint64(0) << P;
        QTest::newRow("not-json") << QByteArray("hello") << false << qint64(0) << P;
        QTest::newRow("truncated") << QByteArray("{\"return\": 17") << false << qint64(0) << P;
        QTest::newRow("empty") << QByteArray("") << false << qint64(0) << P;
        QTest::newRow("error")
            << QByteArray("{\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}}") << false
            << qint64(0) << int(ErrorKind::AgentError);
        QTest::newRow("error-garbled")
            << QByteArray("{\"error\": 3}") << false << qint64(0) << int(ErrorKind::AgentError);
        QTest::newRow("not-found")
            << QByteArray("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"x\"}}") << false
            << qint64(0) << int(ErrorKind::CommandNotFound);
        QTest::newRow("disabled") << QByteArray("{\"error\": {\"class\": \"GenericError\", "
                                                "\"desc\": \"The command guest-get-time has been "
                                                "disabled for this instance\"}}")
                                  << false << qint64(0) << int(ErrorKind::CommandDisabled);
    }
    void getTime()
    {
        QFETCH(QByteArray, reply);
        QFETCH(bool, ok);
        QFETCH(qint64, ns);
        QFETCH(int, kind);
        std::string text = reply.toStdString();
        Expected<int64_t> r = protocol::parseGetTimeReply(text);
        QCOMPARE(r.ok(), ok);
        if (ok) {
            QCOMPARE(*r, ns);
        } else {
            QCOMPARE(int(r.error().kind), kind);
            QVERIFY(!r.error().message.empty());
        }
    }

    void oversizeRejected()
    {
        std::string big = "{\"return\": \"" + std::string(protocol::kMaxReplyBytes, 'a') + "\"}";
        Expected<std::string> r = protocol::parseReturn(big);
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Protocol);
        QVERIFY(r.error().message.find("64 KiB") != std::string::npos);
    }

    void invalidUtf8DoesNotThrow()
    {
        Expected<std::string> r = protocol::parseReturn("{\"return\": \"\xc3\x28\"}");
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::Protocol);
    }

    void deepNestingDoesNotCrash()
    {
        std::string deep =
            "{\"return\": " + std::string(20000, '[') + std::string(20000, ']') + "}";
        Expected<int64_t> r = protocol::parseGetTimeReply(deep);
        QVERIFY(!r);
    }

    void framing()
    {
        std::string buf =
            std::string("\xff\xff\n") + "{\"return\": 1}\n\xff{\"return\": 2}\n{\"ret";
        auto a = protocol::takeReplyLine(buf);
        QVERIFY(a && *a);
        QCOMPARE(**a, std::string("{\"return\": 1}"));
        auto b = protocol::takeReplyLine(buf);
        QVERIFY(b && *b);
        QCOMPARE(**b, std::string("{\"return\": 2}"));
        QVERIFY(!protocol::takeReplyLine(buf)); // partial line: wait for more
        QCOMPARE(buf, std::string("{\"ret"));
        std::string big(protocol::kMaxReplyBytes + 1, '7');
        auto c = protocol::takeReplyLine(big);
        QVERIFY(c && !*c);
        QCOMPARE(c->error().kind, ErrorKind::Protocol);
    }

    void emptyReply()
    {
        QVERIFY(protocol::parseEmptyReply("{\"return\": {}}").ok());
        QVERIFY(!protocol::parseEmptyReply("{\"return\": {\"x\": 1}}").ok());
        QVERIFY(!protocol::parseEmptyReply("{\"return\": 3}").ok());
    }

    void syncReply()
    {
        Expected<int64_t> id = protocol::parseSyncReply("\xff{\"return\": 123456}");
        QVERIFY(id);
        QCOMPARE(*id, 123456);
        QVERIFY(!protocol::parseSyncReply("{\"return\": \"123\"}"));
    }

    void info()
    {
        Expected<AgentInfo> i = protocol::parseInfoReply(
            "{\"return\": {\"version\": \"7.2.0\", \"supported_commands\": ["
            "{\"enabled\": true, \"name\": \"guest-get-time\", \"success-response\": true},"
            "{\"enabled\": false, \"name\": \"guest-set-time\", \"success-response\": true},"
            "{\"name\": \"guest-ping\"}]}}");
        QVERIFY(i);
        QCOMPARE(i->version, std::string("7.2.0"));
        QCOMPARE(i->commands.size(), std::size_t(3));
        QVERIFY(i->supports("guest-get-time"));
        QVERIFY(!i->supports("guest-set-time")); // blocked
        QVERIFY(i->supports("guest-ping"));      // enabled defaults to true
        QVERIFY(!i->supports("guest-exec"));     // unknown
    }

    void infoMalformed_data()
    {
        QTest::addColumn<QByteArray>("reply");
        QTest::newRow("no-list") << QByteArray("{\"return\": {\"version\": \"1\"}}");
        QTest::newRow("list-not-array") << QByteArray("{\"return\": {\"supported_commands\": {}}}");
        QTest::newRow("entry-not-object")
            << QByteArray("{\"return\": {\"supported_commands\": [1]}}");
        QTest::newRow("no-name") << QByteArray(
            "{\"return\": {\"supported_commands\": [{\"enabled\": true}]}}");
        QTest::newRow("enabled-string") << QByteArray(
            "{\"return\": {\"supported_commands\": [{\"name\": \"a\", \"enabled\": \"yes\"}]}}");
        QTest::newRow("return-array") << QByteArray("{\"return\": []}");
    }
    void infoMalformed()
    {
        QFETCH(QByteArray, reply);
        Expected<AgentInfo> i = protocol::parseInfoReply(reply.toStdString());
        QVERIFY(!i);
        QCOMPARE(i.error().kind, ErrorKind::Protocol);
    }
};

QTEST_GUILESS_MAIN(TestProtocol)
#include "tst_protocol.moc"
