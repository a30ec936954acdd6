// SPDX-License-Identifier: Apache-2.0
// Fakes for the engine, tracker and scheduler: a manual clock, a simulated
// guest agent (its clock, delays, jitter, faults) and a backend. Deterministic;
// nothing sleeps: simulated time advances only inside the fake calls.
#pragma once

#include "clock.h"
#include "domainbackend.h"
#include "guestagent.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

class FakeClock final : public qga::Clock
{
public:
    explicit FakeClock(int64_t realtime = 1'700'000'000'000'000'000) : m_real(realtime) {}
    int64_t realtimeNs() const override { return m_real.load() + (perThread ? threadTime() : 0); }
    int64_t monotonicNs() const override { return realtimeNs() - m_epochDiff; }
    void sleepNs(int64_t ns) const override
    {
        const_cast<FakeClock*>(this)->advance(ns);
        ++sleeps;
        if (onSleep)
            onSleep();
    }
    mutable std::atomic<int> sleeps{0};
    std::function<void()> onSleep;
    void advance(int64_t ns)
    {
        if (perThread)
            threadTime() += ns;
        else
            m_real += ns;
    }
    // The host clock is stepped: realtime jumps, monotonic does not.
    void stepRealtime(int64_t ns)
    {
        m_real += ns;
        m_epochDiff += ns;
    }
    // Each thread gets its own time line: simulated guests served by parallel
    // workers then do not see each other's simulated time pass.
    bool perThread = false;

private:
    static int64_t& threadTime()
    {
        thread_local int64_t t = 0;
        return t;
    }
    std::atomic<int64_t> m_real;
    std::atomic<int64_t> m_epochDiff{1'600'000'000'000'000'000};
};

// A guest whose clock is host + offset. getTime takes rtt (guest reads the
// clock after readDelay); setTime lands after setDelays[i] (cycled).
class FakeAgent final : public qga::GuestAgent
{
public:
    FakeAgent(FakeClock& clock, int64_t offsetNs) : m_clock(clock), m_offset(offsetNs) {}

    int64_t rttNs = 400'000;
    int64_t readDelayNs = 200'000;             // request travel until the guest reads
    std::vector<int64_t> setDelaysNs{500'000}; // request travel until settimeofday
    int64_t setDurationNs = 10'000'000;        // hwclock -w afterwards
    bool frozen = false;                       // returns the same time forever
    bool ignoresSet = false;                   // says ok, changes nothing
    std::deque<qga::Error> getErrors;          // next getTime calls fail with these
    // A busy path: the next getTime calls take these round trips instead, the
    // extra time spent before the guest reads (so their midpoint is biased).
    std::deque<int64_t> busyRttsNs;
    std::deque<qga::Error> setErrors;
    bool setErrorsApply = false; // a failed set still lands (it timed out, then ran)
    std::function<void()> onSet; // called inside setTime (e.g. pause the domain)
    int64_t quantumNs = 0;       // reads and sets truncated to this (1 ms: an old Windows agent)
    // Windows qemu-ga: reads a clock that advances per tick (in 100 ns
    // units), sets through SYSTEMTIME (whole milliseconds).
    int64_t tickNs = 0;
    int64_t setQuantumNs = 0;
    void shift(int64_t ns) { m_offset += ns; }

    int gets = 0;
    int sets = 0;
    int rtcSets = 0;
    int64_t offset() const { return m_offset; }

    std::string transport() const override { return "fake"; }
    qga::Expected<void> ping() override { return {}; }
    qga::Expected<qga::AgentInfo> info() override { return qga::AgentInfo{}; }
    qga::Expected<qga::TimeSample> getTime() override
    {
        ++gets;
        if (!getErrors.empty()) {
            qga::Error e = getErrors.front();
            getErrors.pop_front();
            m_clock.advance(rttNs);
            return e;
        }
        int64_t extra = 0;
        if (!busyRttsNs.empty()) {
            extra = busyRttsNs.front() - rttNs;
            busyRttsNs.pop_front();
        }
        qga::TimeSample s;
        s.hostBeforeNs = m_clock.realtimeNs();
        m_clock.advance(readDelayNs + extra);
        s.guestNs = frozen ? 1'700'000'000'000'000'000 : m_clock.realtimeNs() + m_offset;
        if (quantumNs)
            s.guestNs -= s.guestNs % quantumNs;
        if (tickNs) // the tick boundaries follow the guest's own clock since its last set
            s.guestNs -= (s.guestNs - m_tickPhaseNs) % tickNs;
        m_clock.advance(rttNs - readDelayNs);
        s.hostAfterNs = m_clock.realtimeNs();
        return s;
    }
    qga::Expected<void> setTime(int64_t guestNs) override
    {
        const int64_t delay = setDelaysNs[std::size_t(sets) % setDelaysNs.size()];
        ++sets;
        if (onSet)
            onSet();
        if (!setErrors.empty() && !setErrorsApply) {
            qga::Error e = setErrors.front();
            setErrors.pop_front();
            return e;
        }
        std::optional<qga::Error> late;
        if (!setErrors.empty()) {
            late = setErrors.front();
            setErrors.pop_front();
        }
        m_clock.advance(delay);
        if (quantumNs)
            guestNs -= guestNs % quantumNs;
        if (setQuantumNs)
            guestNs -= guestNs % setQuantumNs;
        if (!ignoresSet) {
            m_offset = guestNs - m_clock.realtimeNs();
            m_tickPhaseNs = guestNs;
        }
        m_clock.advance(setDurationNs);
        if (late)
            return *late;
        return {};
    }
    qga::Expected<void> setTimeFromRtc() override
    {
        ++rtcSets;
        // The RTC has whole seconds: the guest lands within a second.
        m_offset = -300'000'000;
        m_clock.advance(setDurationNs);
        return {};
    }

private:
    FakeClock& m_clock;
    int64_t m_offset;
    int64_t m_tickPhaseNs = 0;
};

// A backend of simulated domains, each with its own fake agent factory.
// Optionally gates every agent call until the test opens the gate, to hold
// syncs in flight and observe concurrency.
class FakeBackend final : public clocksync::DomainBackend
{
public:
    struct Domain
    {
        bool running = true;
        clocksync::PolicyParse policy;
        clocksync::DomainFacts facts;
        int64_t offsetNs = -5'000'000'000;
        std::optional<qga::Error> agentError;  // openAgent/first call fails
        bool hang = false;                     // openAgent blocks until release(uuid)
        std::optional<qga::Error> setError;    // every set fails so (not applied)
        std::optional<qga::Error> policyError; // readPolicy fails (libvirt could not say)
        std::optional<qga::Error> factsError;  // facts fails (no live XML)
    };

    explicit FakeBackend(FakeClock& clock) : m_clock(clock) {}

    void setDomain(const std::string& uuid, Domain d)
    {
        std::lock_guard l(m_mutex);
        m_domains[uuid] = std::move(d);
    }
    void setRunning(const std::string& uuid, bool running)
    {
        std::lock_guard l(m_mutex);
        m_domains[uuid].running = running;
    }
    void setAgentError(const std::string& uuid, std::optional<qga::Error> e)
    {
        std::lock_guard l(m_mutex);
        m_domains[uuid].agentError = std::move(e);
    }
    void setSetError(const std::string& uuid, std::optional<qga::Error> e)
    {
        std::lock_guard l(m_mutex);
        m_domains[uuid].setError = std::move(e);
    }
    void setPolicy(const std::string& uuid, clocksync::PolicyParse p)
    {
        std::lock_guard l(m_mutex);
        m_domains[uuid].policy = std::move(p);
    }
    void release(const std::string& uuid)
    {
        {
            std::lock_guard l(m_mutex);
            m_domains[uuid].hang = false;
        }
        m_cv.notify_all();
    }
    // Gate: while closed, openAgent blocks (counts as in flight).
    void closeGate()
    {
        std::lock_guard l(m_mutex);
        m_gateOpen = false;
    }
    void openGate()
    {
        {
            std::lock_guard l(m_mutex);
            m_gateOpen = true;
        }
        m_cv.notify_all();
    }
    // Waits (with a deadline) until n workers are blocked at the gate.
    bool waitForBlocked(int n, std::chrono::milliseconds timeout)
    {
        std::unique_lock l(m_mutex);
        return m_cv.wait_for(l, timeout, [&] { return m_blocked >= n; });
    }
    int opened() const { return m_opened.load(); }
    bool recordOrder = false; // keep the openAgent order (tests of ordering only: it grows)
    std::vector<std::string> order()
    {
        std::lock_guard l(m_mutex);
        return m_order;
    }

    // One field of a known domain, or "no such domain".
    template <typename T> qga::Expected<T> field(const std::string& uuid, T Domain::*member)
    {
        std::lock_guard l(m_mutex);
        auto it = m_domains.find(uuid);
        if (it == m_domains.end())
            return qga::makeError(qga::ErrorKind::NotRunning, "no such domain");
        return it->second.*member;
    }
    qga::Expected<clocksync::PolicyParse> readPolicy(const std::string& uuid) override
    {
        if (auto e = field(uuid, &Domain::policyError); e && *e)
            return **e;
        return field(uuid, &Domain::policy);
    }
    qga::Expected<clocksync::DomainFacts> facts(const std::string& uuid) override
    {
        if (auto e = field(uuid, &Domain::factsError); e && *e)
            return **e;
        return field(uuid, &Domain::facts);
    }
    qga::Expected<bool> isRunning(const std::string& uuid) override
    {
        std::lock_guard l(m_mutex);
        auto it = m_domains.find(uuid);
        return it != m_domains.end() && it->second.running;
    }
    qga::Expected<std::unique_ptr<qga::GuestAgent>> openAgent(const std::string& uuid) override
    {
        std::unique_lock l(m_mutex);
        if (recordOrder)
            m_order.push_back(uuid);
        ++m_blocked;
        m_cv.notify_all();
        m_cv.wait(l, [&] { return m_gateOpen && !m_domains[uuid].hang; });
        --m_blocked;
        ++m_opened;
        Domain& d = m_domains[uuid];
        if (d.agentError)
            return *d.agentError;
        // Each domain's guest keeps its clock across syncs.
        auto agent = std::make_unique<FakeAgent>(m_clock, d.offsetNs);
        if (d.setError) { // never answered: nothing lands (so far)
            agent->setErrors.assign(1000, *d.setError);
            return std::unique_ptr<qga::GuestAgent>(std::move(agent));
        }
        agent->onSet = [this, uuid] { // once set, the guest is (near) right
            std::lock_guard g(m_mutex);
            m_domains[uuid].offsetNs = 0;
        };
        return std::unique_ptr<qga::GuestAgent>(std::move(agent));
    }

private:
    FakeClock& m_clock;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_gateOpen = true;
    int m_blocked = 0;
    std::atomic<int> m_opened{0};
    std::map<std::string, Domain> m_domains;
    std::vector<std::string> m_order;
};
