// SPDX-License-Identifier: Apache-2.0
// The real daemon event path (libvirt event loop thread → connection →
// event map → tracker → scheduler → LibvirtAgent) against libvirt's test
// driver, which emits lifecycle and metadata events and implements
// Get/SetTime, but has no agent-lifecycle events.
#include "daemon.h"
#include "eventloop.h"
#include "libvirtconnection.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <QCoreApplication>
#include <QDir>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace clocksync;

class TestTestDriver : public QObject
{
    Q_OBJECT
    QTemporaryDir m_dir;
    std::unique_ptr<Daemon> m_daemon;
    std::unique_ptr<QSignalSpy> m_spy;
    qga::ConnectHandle m_conn;
    qga::DomainHandle m_dom;

    SyncResult waitResult(Trigger t)
    {
        for (;;) {
            while (m_spy->isEmpty())
                if (!m_spy->wait(10000))
                    return {};
            SyncResult r = m_spy->takeFirst().at(0).value<SyncResult>();
            if (r.trigger == t)
                return r;
        }
    }

private slots:
    void initTestCase()
    {
        QVERIFY(startLibvirtEventLoop());
        DaemonConfig c;
        c.uri = "test:///default";
        c.agentWaitSeconds = 1;
        QVERIFY(m_dir.isValid());
        c.controlSocket = m_dir.filePath("control.sock"); // never a real daemon's
        m_daemon = std::make_unique<Daemon>(
            c, std::make_unique<LibvirtConnection>(c, qga::SystemClock::instance()));
        m_spy = std::make_unique<QSignalSpy>(m_daemon.get(), &Daemon::syncFinished);
        QSignalSpy connected(&m_daemon->hypervisor(), &Hypervisor::connected);
        QCOMPARE(m_daemon->start(), QString());
        QVERIFY(connected.wait(10000));
        // test:///default is one shared instance per process: a second
        // connection plays the operator.
        m_conn.reset(virConnectOpen("test:///default"));
        QVERIFY(m_conn);
        m_dom.reset(virDomainLookupByName(m_conn.get(), "test"));
        QVERIFY(m_dom);
    }

    // Two daemons would both set every guest: the second does not start.
    void secondDaemonDoesNotStart()
    {
        Daemon second(m_daemon->config(), std::make_unique<LibvirtConnection>(
                                              m_daemon->config(), qga::SystemClock::instance()));
        const QString err = second.start();
        QVERIFY2(err.contains("another virt-clocksyncd"), qPrintable(err));
        QVERIFY(!second.hypervisor().isConnected());
    }

    void reconcileOnConnect()
    {
        SyncResult r = waitResult(Trigger::Reconcile);
        QCOMPARE(r.domain, std::string("test"));
        QVERIFY2(r.ok(), describe(r).c_str());
        QCOMPARE(r.transport, std::string("libvirt"));
    }

    void suspendResumeSyncs()
    {
        QCOMPARE(virDomainSuspend(m_dom.get()), 0);
        QCOMPARE(virDomainResume(m_dom.get()), 0);
        SyncResult r = waitResult(Trigger::Resumed);
        QCOMPARE(r.domain, std::string("test"));
        QVERIFY2(r.ok(), describe(r).c_str());
        QVERIFY(r.before.has_value());
    }

    void metadataPolicyTakesEffectLive()
    {
        const char* uri = kMetadataUri;
        QCOMPARE(virDomainSetMetadata(m_dom.get(), VIR_DOMAIN_METADATA_ELEMENT,
                                      "<policy mode=\"off\"/>", kMetadataKey, uri,
                                      VIR_DOMAIN_AFFECT_LIVE),
                 0);
        SyncResult r = waitResult(Trigger::PolicyChanged);
        QCOMPARE(r.outcome, Outcome::Skipped);
        QCOMPARE(virDomainSuspend(m_dom.get()), 0);
        QCOMPARE(virDomainResume(m_dom.get()), 0);
        r = waitResult(Trigger::Resumed);
        QCOMPARE(r.outcome, Outcome::Skipped);
        QCOMPARE(virDomainSetMetadata(m_dom.get(), VIR_DOMAIN_METADATA_ELEMENT, nullptr, nullptr,
                                      uri, VIR_DOMAIN_AFFECT_LIVE),
                 0);
        r = waitResult(Trigger::PolicyChanged);
        QVERIFY2(r.outcome != Outcome::Skipped, describe(r).c_str());
    }

    void hostClockStepSyncsRunningGuests()
    {
        // The step itself is injected: tests never step the real host clock.
        m_daemon->onHostClockStep(-2'000'000'000);
        SyncResult r = waitResult(Trigger::HostClockStep);
        QCOMPARE(r.domain, std::string("test"));
        QVERIFY2(r.ok(), describe(r).c_str());
    }

    void driftWatchFollowsTheMetadata()
    {
        QVERIFY(!m_daemon->driftWatch().timerActive()); // off by default: no wakeups
        QCOMPARE(virDomainSetMetadata(m_dom.get(), VIR_DOMAIN_METADATA_ELEMENT,
                                      "<policy watch-interval=\"30\"/>", kMetadataKey, kMetadataUri,
                                      VIR_DOMAIN_AFFECT_LIVE),
                 0);
        waitResult(Trigger::PolicyChanged);
        QCOMPARE(m_daemon->driftWatch().watched(), 1);
        QVERIFY(m_daemon->driftWatch().timerActive());
        QCOMPARE(virDomainSetMetadata(m_dom.get(), VIR_DOMAIN_METADATA_ELEMENT, nullptr, nullptr,
                                      kMetadataUri, VIR_DOMAIN_AFFECT_LIVE),
                 0);
        waitResult(Trigger::PolicyChanged);
        QCOMPARE(m_daemon->driftWatch().watched(), 0);
        QVERIFY(!m_daemon->driftWatch().timerActive());
    }

    void restoreWaitsForTheAgentButNotForever()
    {
        // The test driver never reports an agent connecting: the sync waits
        // for it, and does not wait for that event alone -- its retry timer
        // tries the agent (here the driver's, which answers) within the
        // deadline (1 s), without any event.
        QTemporaryDir dir; // removed however the test ends
        QVERIFY(dir.isValid());
        const QString file = dir.filePath("save.img");
        QCOMPARE(virDomainSave(m_dom.get(), file.toUtf8().constData()), 0);
        QCOMPARE(virDomainRestore(m_conn.get(), file.toUtf8().constData()), 0);
        QTRY_VERIFY_WITH_TIMEOUT(!m_daemon->tracker().status().empty() &&
                                     m_daemon->tracker().status()[0].state ==
                                         DomainState::WaitingAgent,
                                 5000);
        SyncResult r = waitResult(Trigger::Restored);
        QVERIFY2(r.ok() && r.outcome != Outcome::Skipped, describe(r).c_str());
        QVERIFY2(r.latencyNs < 1'000'000'000, describe(r).c_str());
        m_dom.reset(virDomainLookupByName(m_conn.get(), "test"));
        QVERIFY(m_dom);
    }

    // libvirt's one "agent unresponsive" code means three things; the kinds
    // the tracker branches on must tell them apart.
    void agentUnresponsiveIsMappedByWhatItSays()
    {
        using qga::ErrorKind;
        const int code = VIR_ERR_AGENT_UNRESPONSIVE;
        QCOMPARE(qga::libvirtErrorKind(code, "Guest agent is not responding: Guest agent not "
                                             "available for now"),
                 ErrorKind::Timeout);
        QCOMPARE(qga::libvirtErrorKind(code, "Guest agent is not responding: QEMU guest agent is "
                                             "not connected"),
                 ErrorKind::AgentUnavailable);
        QCOMPARE(qga::libvirtErrorKind(code, "Guest agent disappeared while executing command"),
                 ErrorKind::AgentUnavailable);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_OPERATION_TIMEOUT, "timed out"), ErrorKind::Timeout);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_NO_DOMAIN, "no domain"), ErrorKind::NotRunning);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_OPERATION_UNSUPPORTED, "no"),
                 ErrorKind::Unsupported);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_AGENT_UNSYNCED, "unsynced"), ErrorKind::Protocol);
    }

    // libvirt >= 11.2's codes (by number: this build's headers may lack
    // them), and classification where libvirt's wrapping text is translated
    // (its daemon's LANG): the agent's own words and the command's name
    // decide, and an unknown text never parks a domain (retried, measured).
    void newerAndTranslatedErrorsAreMapped()
    {
        using qga::ErrorKind;
        QCOMPARE(qga::libvirtErrorKind(112, "Guest agent didn't respond to command within timeout"),
                 ErrorKind::Timeout);
        QCOMPARE(qga::libvirtErrorKind(113,
                                       "unable to execute QEMU agent command 'guest-set-time': "
                                       "child process has failed to set hardware clock to "
                                       "system time: exit status 1"),
                 ErrorKind::AgentError);
        QCOMPARE(qga::libvirtErrorKind(113, "Command guest-set-time has been disabled"),
                 ErrorKind::CommandDisabled);
        // German libvirt, the agent's words untranslated.
        const std::string de = "Interner Fehler: QEMU-Agent-Befehl 'guest-set-time' konnte nicht "
                               "ausgef\u00fchrt werden: ";
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR,
                                       de + "The command guest-set-time has been disabled for "
                                            "this instance"),
                 ErrorKind::CommandDisabled);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR,
                                       de + "The command guest-set-time has not been found"),
                 ErrorKind::CommandNotFound);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR, de + "Invalid time"),
                 ErrorKind::AgentError);
        // Typographic quotes, a capital "Agent", no "agent" at all.
        QCOMPARE(
            qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR,
                                  "Erreur : commande \u00abguest-set-time\u00bb : Invalid time"),
            ErrorKind::AgentError);
        QCOMPARE(
            qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR, "Der QEMU-Agent meldet: Invalid time"),
            ErrorKind::AgentError);
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_INTERNAL_ERROR, "Verbindung verloren"),
                 ErrorKind::Transport);
        // "not connected", translated: not read as "wait for the connect
        // event" (which a connected agent never sends) but retried.
        QCOMPARE(qga::libvirtErrorKind(VIR_ERR_AGENT_UNRESPONSIVE,
                                       "Gast-Agent antwortet nicht: QEMU-Gast-Agent ist nicht "
                                       "verbunden"),
                 ErrorKind::Timeout);
    }

    void cleanupTestCase()
    {
        m_daemon->shutdown();
        m_dom.reset();
        m_conn.reset();
    }
};

int main(int argc, char** argv)
{
    prepareQtForLibvirtEventLoop();
    QCoreApplication app(argc, argv);
    TestTestDriver t;
    return QTest::qExec(&t, argc, argv);
}
#include "tst_testdriver.moc"
