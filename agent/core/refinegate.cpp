// SPDX-License-Identifier: Apache-2.0
// RefineGate.
#include "refinegate.h"

namespace clocksync {

void RefineGate::phase1Started()
{
    std::lock_guard l(m_mutex);
    ++m_phase1;
}

void RefineGate::phase1Ended()
{
    std::lock_guard l(m_mutex);
    --m_phase1;
}

bool RefineGate::tryEnter()
{
    std::lock_guard l(m_mutex);
    if (m_phase1 > 0 || m_held)
        return false;
    m_held = true;
    return true;
}

void RefineGate::leave()
{
    std::lock_guard l(m_mutex);
    m_held = false;
}

} // namespace clocksync
