// SPDX-License-Identifier: Apache-2.0
// SocketAgent against the real qemu-ga binary running on the host over a unix
// socket. Every state-changing command is blocked with --block-rpcs (the list
// is everything qemu-ga knows minus a read-only allowlist), so this test can
// never set the host clock. The host qemu-ga shares our clock: true offset 0.
#include "skip.h"
#include "socketagent.h"

#include <QProcess>
#include <QSet>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <chrono>

using namespace qga;
using namespace std::chrono_literals;

class TestHostQga : public QObject
{
    Q_OBJECT
    QTemporaryDir m_dir;
    QProcess m_qga;
    QString m_sock;

private slots:
    void initTestCase()
    {
        const QString qga = QStandardPaths::findExecutable("qemu-ga", {"/usr/sbin", "/usr/bin"});
        if (qga.isEmpty())
            CLOCKSYNC_SKIP("qemu-ga not installed (contrib/install-deps.sh installs it)");

        QProcess list;
        list.start(qga, {"--block-rpcs=?"});
        QVERIFY(list.waitForFinished(10000));
        const QSet<QString> readOnly = {"guest-sync-delimited", "guest-sync", "guest-ping",
                                        "guest-get-time", "guest-info"};
        QStringList block;
        for (const QByteArray& l : list.readAllStandardOutput().split('\n')) {
            QString rpc = QString::fromLatin1(l).trimmed();
            if (!rpc.isEmpty() && !readOnly.contains(rpc))
                block << rpc;
        }
        QVERIFY2(block.contains("guest-set-time"), "qemu-ga did not list guest-set-time");

        m_sock = m_dir.filePath("qga.sock");
        m_qga.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        m_qga.start(qga, {"-m", "unix-listen", "-p", m_sock, "-t", m_dir.path(), "-f",
                          m_dir.filePath("qga.pid"), "--block-rpcs=" + block.join(',')});
        QVERIFY(m_qga.waitForStarted(10000));
        // Wait (with a deadline) until qemu-ga has bound its socket.
        QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(m_sock), 10000);
    }

    void cleanupTestCase()
    {
        if (m_qga.state() != QProcess::NotRunning) {
            m_qga.terminate();
            if (!m_qga.waitForFinished(5000))
                m_qga.kill();
        }
    }

    void pingAndInfo()
    {
        SocketAgent agent(m_sock.toStdString(), SystemClock::instance(), 5000ms);
        QVERIFY(agent.ping().ok());
        Expected<AgentInfo> info = agent.info();
        QVERIFY2(info.ok(), info ? "" : info.error().message.c_str());
        QVERIFY(!info->version.empty());
        QVERIFY(info->supports("guest-get-time"));
        QVERIFY(!info->supports("guest-set-time")); // blocked: the host clock is safe
    }

    void getTimeWithinRtt()
    {
        SocketAgent agent(m_sock.toStdString(), SystemClock::instance(), 5000ms);
        std::vector<TimeSample> samples;
        for (int i = 0; i < 50; ++i) {
            Expected<TimeSample> s = agent.getTime();
            QVERIFY2(s.ok(), s ? "" : s.error().message.c_str());
            samples.push_back(*s);
        }
        const TimeSample* best = minRttSample(samples);
        QVERIFY(best);
        std::vector<int64_t> rtts;
        for (const TimeSample& s : samples)
            rtts.push_back(s.rttNs());
        std::sort(rtts.begin(), rtts.end());
        qInfo("host qemu-ga getTime over %zu calls: RTT min %.1f us, median %.1f us, max %.1f us; "
              "min-RTT offset %.1f us",
              rtts.size(), rtts.front() / 1e3, rtts[rtts.size() / 2] / 1e3, rtts.back() / 1e3,
              best->offsetNs() / 1e3);
        // Same clock on both ends: the offset lies within the round trip.
        QVERIFY(std::llabs(best->offsetNs()) <= best->rttNs());
        QCOMPARE(agent.handshakes(), 1);
    }

    void blockedSetIsRefusedTyped()
    {
        // guest-set-time is blocked above, so this call cannot reach the clock;
        // it proves a disabled command maps to CommandDisabled.
        SocketAgent agent(m_sock.toStdString(), SystemClock::instance(), 5000ms);
        Expected<AgentInfo> info = agent.info();
        QVERIFY(info.ok());
        QVERIFY(!info->supports("guest-set-time"));
        Expected<void> r = agent.setTimeFromRtc();
        QVERIFY(!r);
        QCOMPARE(r.error().kind, ErrorKind::CommandDisabled);
    }
};

QTEST_GUILESS_MAIN(TestHostQga)
#include "tst_hostqga.moc"
