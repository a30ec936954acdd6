// SPDX-License-Identifier: Apache-2.0
// The trigger table (docs/design.md §2), row by row.
#include "eventmap.h"

#include <libvirt/libvirt.h>

#include <QTest>

using namespace clocksync;
using A = EventAction;

class TestEventMap : public QObject
{
    Q_OBJECT
private slots:
    void lifecycle_data()
    {
        QTest::addColumn<int>("event");
        QTest::addColumn<int>("detail");
        QTest::addColumn<EventAction>("expected");
        QTest::newRow("resumed/unpaused")
            << int(VIR_DOMAIN_EVENT_RESUMED) << int(VIR_DOMAIN_EVENT_RESUMED_UNPAUSED)
            << A{A::Sync, Trigger::Resumed};
        QTest::newRow("resumed/migrated")
            << int(VIR_DOMAIN_EVENT_RESUMED) << int(VIR_DOMAIN_EVENT_RESUMED_MIGRATED)
            << A{A::MigrationResumed, Trigger::MigratedIn, true}; // side: MigrationSides
        QTest::newRow("resumed/snapshot")
            << int(VIR_DOMAIN_EVENT_RESUMED) << int(VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT)
            << A{A::Sync, Trigger::SnapshotReverted};
        QTest::newRow("resumed/postcopy")
            << int(VIR_DOMAIN_EVENT_RESUMED) << int(VIR_DOMAIN_EVENT_RESUMED_POSTCOPY)
            << A{A::MigrationResumed, Trigger::MigratedIn};
        QTest::newRow("resumed/postcopy-failed") << int(VIR_DOMAIN_EVENT_RESUMED) << 4 << A{};
        QTest::newRow("started/booted")
            << int(VIR_DOMAIN_EVENT_STARTED) << int(VIR_DOMAIN_EVENT_STARTED_BOOTED)
            << A{A::SyncIfBootPolicy, Trigger::Booted};
        QTest::newRow("started/migrated")
            << int(VIR_DOMAIN_EVENT_STARTED) << int(VIR_DOMAIN_EVENT_STARTED_MIGRATED)
            << A{A::IncomingMigration, Trigger::MigratedIn}; // Prepare: no agent deadline yet
        QTest::newRow("started/restored")
            << int(VIR_DOMAIN_EVENT_STARTED) << int(VIR_DOMAIN_EVENT_STARTED_RESTORED)
            << A{A::SyncWhenAgent, Trigger::Restored};
        QTest::newRow("started/snapshot")
            << int(VIR_DOMAIN_EVENT_STARTED) << int(VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT)
            << A{A::SyncWhenAgent, Trigger::SnapshotReverted};
        QTest::newRow("started/wakeup")
            << int(VIR_DOMAIN_EVENT_STARTED) << int(VIR_DOMAIN_EVENT_STARTED_WAKEUP)
            << A{A::Sync, Trigger::PmWakeup}; // the agent stays: no wait for a "connected"
        QTest::newRow("suspended")
            << int(VIR_DOMAIN_EVENT_SUSPENDED) << int(VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
            << A{A::Cancel, Trigger::Resumed};
        QTest::newRow("stopped") << int(VIR_DOMAIN_EVENT_STOPPED)
                                 << int(VIR_DOMAIN_EVENT_STOPPED_SAVED)
                                 << A{A::Stop, Trigger::Resumed};
        QTest::newRow("stopped/migrated")
            << int(VIR_DOMAIN_EVENT_STOPPED) << int(VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
            << A{A::Forget, Trigger::Resumed}; // runs elsewhere
        QTest::newRow("shutdown") << int(VIR_DOMAIN_EVENT_SHUTDOWN) << 0
                                  << A{A::Stop, Trigger::Resumed};
        QTest::newRow("crashed") << int(VIR_DOMAIN_EVENT_CRASHED) << 0
                                 << A{A::Cancel, Trigger::Resumed};
        QTest::newRow("pmsuspended")
            << int(VIR_DOMAIN_EVENT_PMSUSPENDED) << 0 << A{A::Cancel, Trigger::Resumed};
        QTest::newRow("defined/added")
            << int(VIR_DOMAIN_EVENT_DEFINED) << int(VIR_DOMAIN_EVENT_DEFINED_ADDED) << A{};
        QTest::newRow("defined/updated") // virsh define, virt-manager's XML editor
            << int(VIR_DOMAIN_EVENT_DEFINED) << int(VIR_DOMAIN_EVENT_DEFINED_UPDATED)
            << A{A::PolicyChanged, Trigger::PolicyChanged};
        QTest::newRow("undefined") << int(VIR_DOMAIN_EVENT_UNDEFINED) << 0 << A{A::Undefined};
        QTest::newRow("unknown-event") << 999 << 0 << A{};
        QTest::newRow("unknown-detail") << int(VIR_DOMAIN_EVENT_STARTED) << 999 << A{};
    }
    void lifecycle()
    {
        QFETCH(int, event);
        QFETCH(int, detail);
        QFETCH(EventAction, expected);
        const EventAction got = mapLifecycleEvent(event, detail);
        QCOMPARE(int(got.kind), int(expected.kind));
        QCOMPARE(got.migrationDone, expected.migrationDone);
        if (expected.kind != A::None && expected.kind != A::Cancel && expected.kind != A::Stop &&
            expected.kind != A::Forget)
            QCOMPARE(triggerName(got.trigger), triggerName(expected.trigger));
    }

    void agent()
    {
        QCOMPARE(mapAgentLifecycleEvent(VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED, 0)
                     .kind,
                 A::AgentConnected);
        QCOMPARE(
            mapAgentLifecycleEvent(VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED, 2)
                .kind,
            A::AgentDisconnected);
        QCOMPARE(mapAgentLifecycleEvent(77, 0).kind, A::None);
    }

    // RESUMED_MIGRATED is the destination's "incoming guest runs" after a
    // STARTED_MIGRATED, and the source's "migration failed, guest resumed".
    void migrationSides()
    {
        MigrationSides m;
        m.incoming("dst");
        QCOMPARE(triggerName(m.resumed("dst", false)),
                 triggerName(Trigger::MigratedIn)); // post-copy
        QCOMPARE(triggerName(m.resumed("dst", true)), triggerName(Trigger::MigratedIn));
        // The migration is over: the next resume-after-migration here is a failed outgoing one.
        QCOMPARE(triggerName(m.resumed("dst", true)), triggerName(Trigger::MigrationFailed));
        QCOMPARE(triggerName(m.resumed("src", true)), triggerName(Trigger::MigrationFailed));
        m.incoming("gone");
        m.forget("gone"); // stopped before it ran here
        QCOMPARE(triggerName(m.resumed("gone", true)), triggerName(Trigger::MigrationFailed));
    }

    void triggerNamesRoundTrip()
    {
        for (Trigger t :
             {Trigger::Resumed, Trigger::MigratedIn, Trigger::SnapshotReverted, Trigger::Restored,
              Trigger::PmWakeup, Trigger::Booted, Trigger::HostWake, Trigger::Reconcile,
              Trigger::Request, Trigger::PolicyChanged, Trigger::HostClockStep, Trigger::DriftWatch,
              Trigger::MigrationFailed, Trigger::RtcChanged}) {
            auto back = triggerFromName(triggerName(t));
            QVERIFY(back);
            QCOMPARE(int(*back), int(t));
        }
        QVERIFY(!triggerFromName("bogus"));
    }
};

QTEST_GUILESS_MAIN(TestEventMap)
#include "tst_eventmap.moc"
