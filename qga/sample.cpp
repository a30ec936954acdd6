// SPDX-License-Identifier: Apache-2.0
// Sample selection.
#include "sample.h"

namespace qga {

const TimeSample* minRttSample(const std::vector<TimeSample>& samples)
{
    const TimeSample* best = nullptr;
    for (const TimeSample& s : samples) {
        if (!best || s.rttNs() < best->rttNs())
            best = &s;
    }
    return best;
}

} // namespace qga
