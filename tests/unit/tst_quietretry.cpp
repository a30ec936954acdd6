// SPDX-License-Identifier: Apache-2.0
// QuietRetry: a failure repeating on a retry timer warns the first time, on a
// new reason and hourly; a success starts over.
#include "quietretry.h"

#include <QTest>

using namespace clocksync;

class TestQuietRetry : public QObject
{
    Q_OBJECT
private slots:
    void warnsFirstOnNewReasonAndHourly()
    {
        QuietRetry q;
        const int64_t s = 1'000'000'000;
        QVERIFY(q.loud("no socket", 0));
        int loud = 0;
        for (int64_t t = 30 * s; t < 3600 * s; t += 30 * s) // every 30 s for the first hour
            loud += q.loud("no socket", t);
        QCOMPARE(loud, 0);
        QVERIFY(q.loud("no socket", 3600 * s)); // an hour after the last warning
        QVERIFY(!q.loud("no socket", 3630 * s));
        QVERIFY(q.loud("permission denied", 3660 * s)); // the reason changed
        QCOMPARE(q.failures(), 123);
        q.succeeded();
        QCOMPARE(q.failures(), 0);
        QVERIFY(q.loud("permission denied", 3690 * s)); // a new outage warns again
    }
};

QTEST_GUILESS_MAIN(TestQuietRetry)
#include "tst_quietretry.moc"
