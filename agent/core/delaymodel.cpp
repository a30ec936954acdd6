// SPDX-License-Identifier: Apache-2.0
// DelayModel.
#include "delaymodel.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace clocksync {

static int64_t medianOf(const std::array<int64_t, DelayModel::kWindow>& a, int n)
{
    // A vector, not an in-place sort of the array: GCC 12 -O2 warns falsely
    // (-Warray-bounds) on std::sort over a std::array prefix.
    std::vector<int64_t> v(a.begin(), a.begin() + n);
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

int64_t DelayModel::biasNs() const
{
    const int n = std::min(observations, kWindow);
    if (n == 0)
        return 0;
    if (n < 3)
        return std::llabs(recentBiasNs[0]) <= std::llabs(recentBiasNs[std::size_t(n - 1)])
                   ? recentBiasNs[0]
                   : recentBiasNs[std::size_t(n - 1)];
    return medianOf(recentBiasNs, n);
}

void DelayModel::noteRtt(int64_t rttNs)
{
    recentRttNs[std::size_t(rttCount % kRttWindow)] = rttNs;
    ++rttCount;
    const int n = std::min(rttCount, kRttWindow);
    bestRttNs = *std::min_element(recentRttNs.begin(), recentRttNs.begin() + n);
}

void DelayModel::noteSetCost(int64_t ns)
{
    recentSetCostNs[std::size_t(setCount % kCostWindow)] = ns;
    ++setCount;
}

int64_t DelayModel::setCostNs() const
{
    const int n = std::min(setCount, kCostWindow);
    if (n == 0)
        return 0;
    std::vector<int64_t> v(recentSetCostNs.begin(), recentSetCostNs.begin() + n);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

bool DelayModel::plausible(int64_t residualNs, int64_t toleranceNs) const
{
    const int64_t a = std::llabs(residualNs);
    return a <= toleranceNs || (jitterNs() > 0 && a <= 4 * jitterNs());
}

int64_t DelayModel::jitterNs() const
{
    const int n = std::min(observations, kWindow);
    if (n < 3)
        return 0;
    const int64_t med = medianOf(recentBiasNs, n);
    std::array<int64_t, kWindow> dev{};
    for (int i = 0; i < n; ++i)
        dev[std::size_t(i)] = std::llabs(recentBiasNs[std::size_t(i)] - med);
    return medianOf(dev, n);
}

int64_t DelayModel::estimate(int64_t rttNs) const
{
    return std::max<int64_t>(0, rttNs / 2 + biasNs());
}

void DelayModel::learn(int64_t rttNs, int64_t estimateNs, int64_t residualNs)
{
    // A guest that lies could teach us nonsense: clamp the observed delay.
    const int64_t observed = std::clamp<int64_t>(estimateNs - residualNs, 0, 100'000'000);
    recentBiasNs[std::size_t(observations % kWindow)] = observed - rttNs / 2;
    ++observations;
}

} // namespace clocksync
