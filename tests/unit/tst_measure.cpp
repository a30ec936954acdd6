// SPDX-License-Identifier: Apache-2.0
// Measuring a guest clock (measure.h): the min-RTT sample, extra samples on a
// busy path, clocks that stand still or run backwards.
#include "fakes.h"
#include "syncengine.h"

#include <QTest>

#include <limits>

using namespace clocksync;
using qga::ErrorKind;

class TestMeasure : public QObject
{
    Q_OBJECT

private slots:
    // The host's clock is stepped (NTP, an operator) while a Windows-like
    // guest (15.6 ms tick) is sampled: before, the host time between two
    // equal readings was the step, taken for a tick thousands of seconds
    // long -- the guest's tolerance widened by it, a guest off by minutes
    // "in sync" (simulation seed 1459). With the host's monotonic clock at
    // hand the step is seen and the samples before it dropped.
    void hostClockStepIsMeasuredPast_data()
    {
        QTest::addColumn<bool>("duringSample");
        QTest::newRow("during a call") << false;
        QTest::newRow("inside a sample") << true;
    }
    // A step between two calls, outside either: the samples since the first
    // are on another timescale than it (the measurement's own reads of the
    // host's clock see the step, the agent's do not straddle it).
    void hostClockStepBetweenCallsIsMeasuredPast()
    {
        constexpr int64_t kStep = 3'600'000'000'000;
        FakeClock clock;
        FakeAgent guest(clock, 0);
        guest.rttNs = 1'000'000;
        guest.readDelayNs = 500'000;
        // The host's clock as measure() reads it: stepped at its 5th realtime
        // read (before the third sample's request); the guest's does not move.
        struct SteppingClock final : qga::Clock
        {
            FakeClock& c;
            FakeAgent& g;
            mutable int reads = 0;
            SteppingClock(FakeClock& clock, FakeAgent& agent) : c(clock), g(agent) {}
            int64_t realtimeNs() const override
            {
                if (++reads == 5) {
                    c.stepRealtime(kStep);
                    g.shift(-kStep);
                }
                return c.realtimeNs();
            }
            int64_t monotonicNs() const override { return c.monotonicNs(); }
            void sleepNs(int64_t ns) const override { c.sleepNs(ns); }
        } host(clock, guest);
        qga::Expected<Measurement> m = measure(guest, 5, 0, &host);
        QVERIFY(m);
        QVERIFY(host.reads > 5);
        QVERIFY2(std::llabs(m->offsetNs + kStep) <= guest.rttNs,
                 qPrintable(QString::number(m->offsetNs)));
    }
    void hostClockStepIsMeasuredPast()
    {
        QFETCH(bool, duringSample);
        constexpr int64_t kStep = 2'578'639'000'000;
        FakeClock clock;
        FakeAgent guest(clock, 0);
        guest.tickNs = 15'625'000;
        guest.rttNs = 1'000'000;
        guest.readDelayNs = 500'000;
        // The host's clock jumps ahead; the guest's does not.
        struct Stepping final : qga::GuestAgent
        {
            FakeClock& clock;
            FakeAgent& inner;
            bool duringSample;
            int calls = 0;
            Stepping(FakeClock& c, FakeAgent& a, bool d) : clock(c), inner(a), duringSample(d) {}
            void step()
            {
                clock.stepRealtime(kStep);
                inner.shift(-kStep);
            }
            std::string transport() const override { return "stepping"; }
            qga::Expected<void> ping() override { return {}; }
            qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }
            qga::Expected<qga::TimeSample> getTime() override
            {
                ++calls;
                if (calls == 3 && !duringSample)
                    step();
                qga::Expected<qga::TimeSample> s = inner.getTime();
                if (calls == 3 && duringSample && s)
                    s->hostAfterNs += kStep, step();
                return s;
            }
            qga::Expected<void> setTime(int64_t ns) override { return inner.setTime(ns); }
            qga::Expected<void> setTimeFromRtc() override { return {}; }
        };
        {
            Stepping agent(clock, guest, duringSample);
            qga::Expected<Measurement> m = measure(agent, 5, 0, &clock);
            QVERIFY(m);
            QVERIFY2(m->granularityNs <= guest.tickNs,
                     qPrintable(QString::number(m->granularityNs)));
            QVERIFY(std::llabs(m->offsetNs + kStep) <= guest.tickNs + guest.rttNs);
            QVERIFY(m->uncertaintyNs <= guest.rttNs);
        }
    }

    void measurePicksMinRtt()
    {
        FakeClock clock;
        FakeAgent agent(clock, 3'000'000);
        qga::Expected<Measurement> m = measure(agent, 5);
        QVERIFY(m);
        QCOMPARE(m->samples, 5);
        QCOMPARE(m->rttNs, agent.rttNs);
        // The guest reads at 200 of 400 us: midpoint estimate is exact here.
        QCOMPARE(m->offsetNs, 3'000'000);
        QCOMPARE(m->uncertaintyNs, agent.rttNs / 2);
    }

    void frozenClockWithinOneMeasurement()
    {
        FakeClock clock;
        FakeAgent agent(clock, 0);
        agent.frozen = true;
        agent.rttNs = 10'000'000; // 5 samples span 50 ms of host time
        agent.readDelayNs = 5'000'000;
        qga::Expected<Measurement> m = measure(agent, 5);
        QVERIFY(!m);
        QCOMPARE(m.error().kind, ErrorKind::BadClock);
    }

    void backwardsClockIsRejected()
    {
        FakeClock clock;
        struct Backwards final : qga::GuestAgent
        {
            int64_t t = 2'000'000'000'000'000'000;
            std::string transport() const override { return "b"; }
            qga::Expected<void> ping() override { return {}; }
            qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }
            qga::Expected<qga::TimeSample> getTime() override
            {
                t -= 1'000'000;
                return qga::TimeSample{t, t, t + 1000};
            }
            qga::Expected<void> setTime(int64_t) override { return {}; }
            qga::Expected<void> setTimeFromRtc() override { return {}; }
        } agent;
        qga::Expected<Measurement> m = measure(agent, 3);
        QVERIFY(!m);
        QCOMPARE(m.error().kind, ErrorKind::BadClock);
        QVERIFY(m.error().message.find("backwards") != std::string::npos);
    }

    // The guest's own NTP steps its clock between two samples: not a tick of
    // seconds (which would widen its tolerance for good), not a bad clock --
    // the measurement starts again on the stepped clock. Found by the
    // simulation; before, a forward step was kept as the clock's step.
    void guestStepBetweenSamplesRestartsTheMeasurement()
    {
        for (const int64_t step : {int64_t(3'000'000'000), int64_t(-2'000'000'000)}) {
            FakeClock clock;
            FakeAgent guest(clock, -4'000'000'000);
            struct SteppingAgent final : qga::GuestAgent
            {
                FakeAgent& g;
                int64_t step;
                int calls = 0;
                SteppingAgent(FakeAgent& a, int64_t s) : g(a), step(s) {}
                std::string transport() const override { return "stepping"; }
                qga::Expected<void> ping() override { return {}; }
                qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }
                qga::Expected<qga::TimeSample> getTime() override
                {
                    if (++calls == 3)
                        g.shift(step);
                    return g.getTime();
                }
                qga::Expected<void> setTime(int64_t ns) override { return g.setTime(ns); }
                qga::Expected<void> setTimeFromRtc() override { return g.setTimeFromRtc(); }
            } agent(guest, step);
            qga::Expected<Measurement> m = measure(agent, 5);
            QVERIFY2(m, m ? "" : m.error().message.c_str());
            QCOMPARE(m->offsetNs, -4'000'000'000 + step); // the clock after the step
            QCOMPARE(m->granularityNs, int64_t(1));       // no tick of seconds
            QCOMPARE(m->samples, 5);
        }
    }

    // Guest readings are untrusted: extremes a sample apart are a clock that
    // keeps jumping, never a signed overflow (UBSan checks this test).
    void extremeGuestReadingsDoNotOverflow()
    {
        FakeClock clock;
        struct Extreme final : qga::GuestAgent
        {
            FakeClock& c;
            int calls = 0;
            explicit Extreme(FakeClock& clk) : c(clk) {}
            std::string transport() const override { return "extreme"; }
            qga::Expected<void> ping() override { return {}; }
            qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }
            qga::Expected<qga::TimeSample> getTime() override
            {
                const int64_t before = c.realtimeNs();
                c.advance(400'000);
                const int64_t g = ++calls % 2 ? std::numeric_limits<int64_t>::min()
                                              : std::numeric_limits<int64_t>::max();
                return qga::TimeSample{before, g, c.realtimeNs()};
            }
            qga::Expected<void> setTime(int64_t) override { return {}; }
            qga::Expected<void> setTimeFromRtc() override { return {}; }
        } agent(clock);
        qga::Expected<Measurement> m = measure(agent, 5);
        QVERIFY(!m);
        QCOMPARE(m.error().kind, ErrorKind::BadClock);
    }

    // The offset comes from the sample with the shortest round trip: a busy
    // sample's guest read lands anywhere in its round trip.
    void measurementUsesTheQuietestSample()
    {
        FakeClock clock;
        FakeAgent agent(clock, -2'000'000'000);
        // Four quiet samples, then a busy one whose request waited 2.6 ms
        // before the guest read its clock.
        agent.busyRttsNs = {400'000, 400'000, 400'000, 400'000, 3'000'000};
        qga::Expected<Measurement> m = measure(agent, 5, 0);
        QVERIFY(m);
        QCOMPARE(m->rttNs, 400'000);
        QVERIFY2(std::llabs(m->offsetNs - -2'000'000'000) <= 1'000,
                 std::to_string(m->offsetNs).c_str());
    }

    // On a busy path (round trips above twice the domain's floor) up to three
    // times the samples are taken, for a quiet one.
    void busyPathTakesExtraSamples()
    {
        FakeClock clock;
        FakeAgent agent(clock, -2'000'000'000);
        agent.busyRttsNs = std::deque<int64_t>(5, 2'000'000); // then quiet (400 us)
        qga::Expected<Measurement> m = measure(agent, 5, 400'000);
        QVERIFY(m);
        QCOMPARE(m->samples, 6);
        QCOMPARE(m->rttNs, 400'000);
    }
};

QTEST_GUILESS_MAIN(TestMeasure)
#include "tst_measure.moc"
