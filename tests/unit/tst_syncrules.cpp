// SPDX-License-Identifier: Apache-2.0
// The pure decisions of a sync (syncrules.h), the delay model
// (delaymodel.h) and how a result reads (syncresult.h), one by one.
#include "fakes.h"
#include "syncengine.h"

#include <QTest>

using namespace clocksync;
using qga::ErrorKind;

class TestSyncRules : public QObject
{
    Q_OBJECT

private slots:
    void verdictRules()
    {
        std::string note;
        const Limits l{50'000, 1'000'000, 1};
        QCOMPARE(*verdict(Measurement{20'000, 200'000}, l, false, 0, note), Outcome::Synced);
        QCOMPARE(*verdict(Measurement{-20'000, 990'000}, l, false, 0, note), Outcome::Approximate);
        QVERIFY(!verdict(Measurement{300'000, 100'000}, l, false, 0, note)); // go on
        QCOMPARE(*verdict(Measurement{300'000, 100'000}, l, false, 400'000, note),
                 Outcome::Approximate); // within the learned jitter
        QVERIFY(note.find("jitter") != std::string::npos);
        const Limits rtc = effectiveLimits(SyncPolicy{}, true, 1);
        QCOMPARE(*verdict(Measurement{-600'000'000, 0}, rtc, true, 0, note), Outcome::Approximate);
        QVERIFY(!verdict(Measurement{-1'600'000'000, 0}, rtc, true, 0, note));
    }

    // Set number N is made or not, and the reason when not.
    void shouldStopRules()
    {
        const Limits l{50'000, 1'000'000, 1};
        const std::optional<Measurement> none;
        const std::optional<Measurement> far = Measurement{5'000'000};  // beyond tolerance
        const std::optional<Measurement> near = Measurement{150'000};   // within 4 x target
        const std::optional<Measurement> within = Measurement{400'000}; // tolerance, not near
        QVERIFY(!shouldStop(1, 3, none, l));
        QVERIFY(!shouldStop(3, 3, far, l));    // within the budget: always
        QVERIFY(!shouldStop(4, 3, far, l));    // past it, while not close: extra rounds
        QVERIFY(shouldStop(4, 3, near, l));    // close enough once the budget is spent
        QVERIFY(!shouldStop(5, 3, within, l)); // an extra round for a guest within tolerance...
        QVERIFY(shouldStop(6, 3, within, l));  // ...but never the very last one
        QVERIFY(!shouldStop(6, 3, far, l));    // the last one for a guest still outside
        QVERIFY(QByteArray(shouldStop(7, 3, far, l)) == "out of attempts");
    }

    void beforeSettingRules()
    {
        const Limits l = effectiveLimits(SyncPolicy{}, false, 1);
        QCOMPARE(beforeSetting(SyncPolicy{}, Trigger::Resumed, Measurement{300'000}, l)->outcome,
                 Outcome::InSync);
        QVERIFY(!beforeSetting(SyncPolicy{}, Trigger::Resumed, Measurement{-3'000'000}, l));
        SyncPolicy watch;
        watch.measureOnly = true;
        QCOMPARE(beforeSetting(watch, Trigger::DriftWatch, Measurement{3'000'000}, l)->outcome,
                 Outcome::Drifted);
        SyncPolicy limited;
        limited.maxBackwardStepNs = 1'000'000'000;
        const auto refused =
            beforeSetting(limited, Trigger::Reconcile, Measurement{5'000'000'000}, l);
        QCOMPARE(refused->outcome, Outcome::Skipped);
        QVERIFY(refused->note.find("max-backward-step-ms=1000") != std::string::npos);
        QVERIFY(!beforeSetting(limited, Trigger::Resumed, Measurement{5'000'000'000}, l));
        QCOMPARE(nextSetTime(1'000'000'000'000, 75'000), 1'000'000'075'000);
    }

    // With one or two observations, a cold first set must not steer the next:
    // the bias nearest zero is used (the mean of two was half the outlier).
    void fewObservationsUseTheBiasNearestZero()
    {
        DelayModel d;
        d.learn(400'000, 200'000, -2'000'000); // cold: delay 2.2 ms, bias +2.0 ms
        QCOMPARE(d.biasNs(), 2'000'000);
        d.learn(400'000, 200'000, -100'000); // bias +100 us
        QCOMPARE(d.biasNs(), 100'000);
        d.learn(400'000, 200'000, -120'000);
        QCOMPARE(d.biasNs(), 120'000); // three: the median
    }

    // The best round trip ages: under sustained load it rises toward what the
    // path gives now, so measurements stop taking 3x the samples forever.
    void bestRoundTripAges()
    {
        DelayModel d;
        d.noteRtt(100'000);
        QCOMPARE(d.bestRttNs, 100'000);
        for (int i = 0; i < DelayModel::kRttWindow - 1; ++i)
            d.noteRtt(400'000);
        QCOMPARE(d.bestRttNs, 100'000); // a busy spell shorter than the window: kept
        d.noteRtt(400'000);
        QCOMPARE(d.bestRttNs, 400'000); // sustained: the loaded floor
        d.noteRtt(150'000);             // a quiet moment again: taken at once
        QCOMPARE(d.bestRttNs, 150'000);
    }

    void describeIsReadable()
    {
        SyncResult r;
        r.trigger = Trigger::Resumed;
        r.outcome = Outcome::Synced;
        r.before = Measurement{-5'812'000'000, 300'000, 600'000, 5};
        r.after = Measurement{12'000, 250'000, 500'000, 5};
        r.attempts = 2;
        r.latencyNs = 31'000'000;
        QCOMPARE(describe(r),
                 std::string("resumed: synced, offset -5.812 s -> +12.0 us (+/-250.0 us), "
                             "2 sets, 31.0 ms after trigger"));
        r.coarseLatencyNs = 9'500'000; // a refine followed phase 1
        QCOMPARE(describe(r),
                 std::string("resumed: synced, offset -5.812 s -> +12.0 us (+/-250.0 us), "
                             "2 sets, within tolerance at 9.5 ms, 31.0 ms after trigger"));
        r.outcome = Outcome::Failed; // it did not stay there: no such moment is claimed
        QVERIFY(describe(r).find("within tolerance at") == std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestSyncRules)
#include "tst_syncrules.moc"
