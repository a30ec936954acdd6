// SPDX-License-Identifier: Apache-2.0
// A guest agent seen through an intended offset: a guest that runs at host
// UTC + shift on purpose (<clock offset='variable' adjustment=...>) reads as
// offset 0 when it is right, and every set aims at host + shift. The engine
// stays unaware of intended offsets.
#pragma once

#include "guestagent.h"
#include "sample.h"

#include <memory>

namespace clocksync {

class ShiftedAgent final : public qga::GuestAgent
{
public:
    ShiftedAgent(std::unique_ptr<qga::GuestAgent> inner, int64_t shiftNs)
        : m_inner(std::move(inner)), m_shift(shiftNs)
    {
    }
    std::string transport() const override { return m_inner->transport(); }
    qga::Expected<void> ping() override { return m_inner->ping(); }
    qga::Expected<qga::AgentInfo> info() override { return m_inner->info(); }
    qga::Expected<qga::TimeSample> getTime() override
    {
        qga::Expected<qga::TimeSample> s = m_inner->getTime();
        if (s)
            s->guestNs = qga::saturatingSub(s->guestNs, m_shift);
        return s;
    }
    qga::Expected<void> setTime(int64_t guestNs) override
    {
        return m_inner->setTime(guestNs + m_shift);
    }
    qga::Expected<void> setTimeFromRtc() override { return m_inner->setTimeFromRtc(); }

private:
    std::unique_ptr<qga::GuestAgent> m_inner;
    int64_t m_shift;
};

} // namespace clocksync
