// SPDX-License-Identifier: Apache-2.0
// Drift watch scheduling: one timer, only while something is watched.
#include "driftwatch.h"

#include <QSignalSpy>
#include <QTest>

#include <set>

using namespace clocksync;

class TestDriftWatch : public QObject
{
    Q_OBJECT
private slots:
    void noWatchNoWakeups()
    {
        DriftWatch w;
        QVERIFY(!w.timerActive());
        w.setInterval("u1", "vm1", 0);
        QVERIFY(!w.timerActive());
        QCOMPARE(w.watched(), 0);
    }

    void dueGuestsFireAndRemovalStops()
    {
        DriftWatch w;
        QSignalSpy spy(&w, &DriftWatch::due);
        w.setInterval("u1", "vm1", 100);
        w.setInterval("u2", "vm2", 150);
        QVERIFY(w.timerActive());
        QCOMPARE(w.watched(), 2);
        std::set<std::string> seen;
        while (seen.size() < 2) {
            QVERIFY(spy.wait(3000));
            for (const auto& args : spy)
                seen.insert(args.at(0).value<std::string>());
        }
        w.remove("u1");
        w.remove("u2");
        QVERIFY(!w.timerActive());
        spy.clear();
        QVERIFY(!spy.wait(400)); // nothing fires once nothing is watched
    }
};

QTEST_GUILESS_MAIN(TestDriftWatch)
#include "tst_driftwatch.moc"
