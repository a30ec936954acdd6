// SPDX-License-Identifier: Apache-2.0
// Prometheus text-format metrics, fed by sync results and connection state.
// Rendered for the control socket and, if configured, written atomically to a
// node_exporter textfile after every change.
#pragma once

#include "syncresult.h"

#include <QString>

#include <array>
#include <map>
#include <optional>
#include <string>

namespace clocksync {

class Histogram
{
public:
    // Upper bounds in seconds.
    explicit Histogram(std::vector<double> bounds);
    void observe(double seconds);
    void render(std::string& out, const std::string& name, const std::string& help) const;
    uint64_t count() const { return m_count; }

private:
    std::vector<double> m_bounds;
    std::vector<uint64_t> m_buckets;
    uint64_t m_count = 0;
    double m_sum = 0;
};

class Metrics
{
public:
    Metrics();
    void record(const SyncResult& r);
    // A domain that is gone: its per-domain series go with it.
    void forget(const std::string& domain) { m_domains.erase(domain); }
    // The tolerance a domain's effective policy gives it (the offset alert's bound).
    void setTolerance(const std::string& domain, int64_t ns) { m_domains[domain].toleranceNs = ns; }
    void setConnected(bool c) { m_connected = c; }
    void setReconnects(int n) { m_reconnects = n; }
    void setGuests(int tracked, int pending)
    {
        m_tracked = tracked;
        m_pending = pending;
    }
    // The text format; nowNs (realtime) is the virt_clocksync_metrics_timestamp_seconds
    // it reports, so that a textfile left behind by a dead daemon is seen as stale.
    std::string render(int64_t nowNs) const;
    // Writes render() to path atomically (temp file + rename); error text or empty.
    QString writeTextfile(const QString& path, int64_t nowNs) const;

private:
    std::map<std::pair<std::string, std::string>, uint64_t> m_syncs; // (trigger, outcome)
    std::map<std::string, uint64_t> m_agentErrors;                   // kind
    struct DomainSeries
    {
        std::optional<int64_t> offsetNs;      // latest measured
        std::optional<int64_t> successNs;     // realtime of the last verified-in-tolerance result
        std::optional<int64_t> attemptNs;     // realtime of the last result of a correcting trigger
        std::optional<int64_t> configProblem; // 1: left alone for metadata/XML it cannot read
        std::optional<int64_t> toleranceNs;   // its effective policy's tolerance-us
    };
    std::map<std::string, DomainSeries> m_domains;
    void renderDomains(std::string& out) const;
    Histogram m_offsetBefore;
    Histogram m_residual;
    Histogram m_latency;
    Histogram m_coarseLatency;
    bool m_connected = false;
    int m_reconnects = 0;
    int m_tracked = 0;
    int m_pending = 0;
};

} // namespace clocksync
