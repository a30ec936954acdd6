// SPDX-License-Identifier: Apache-2.0
// Metrics.
#include "metrics.h"

#include <QSaveFile>

#include <cmath>
#include <cstdio>

namespace clocksync {

Histogram::Histogram(std::vector<double> bounds)
    : m_bounds(std::move(bounds)), m_buckets(m_bounds.size(), 0)
{
}

void Histogram::observe(double v)
{
    for (std::size_t i = 0; i < m_bounds.size(); ++i)
        if (v <= m_bounds[i])
            ++m_buckets[i];
    ++m_count;
    m_sum += v;
}

static std::string num(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.9g", v);
    return buf;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const
{
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
    for (std::size_t i = 0; i < m_bounds.size(); ++i)
        out += name + "_bucket{le=\"" + num(m_bounds[i]) + "\"} " + std::to_string(m_buckets[i]) +
               "\n";
    out += name + "_bucket{le=\"+Inf\"} " + std::to_string(m_count) + "\n";
    out += name + "_sum " + num(m_sum) + "\n";
    out += name + "_count " + std::to_string(m_count) + "\n";
}

Metrics::Metrics()
    : m_offsetBefore({1e-3, 1e-2, 0.1, 1, 10, 60, 3600, 86400}),
      m_residual({1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 0.1, 1}),
      m_latency({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      m_coarseLatency({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})
{
    // Every counter series exists from the start, at 0: Prometheus's
    // increase() sees a first failure only on a series that existed before
    // it (a series born at 1 is an increase of nothing).
    for (int t = 0; t <= int(Trigger::RtcChanged); ++t)
        for (int o = 0; o <= int(Outcome::Drifted); ++o)
            m_syncs[{std::string(triggerName(Trigger(t))), outcomeName(Outcome(o))}] = 0;
    for (int k = 0; k <= int(qga::ErrorKind::Internal); ++k)
        m_agentErrors[qga::errorKindName(qga::ErrorKind(k))] = 0;
}

void Metrics::record(const SyncResult& r)
{
    ++m_syncs[{std::string(triggerName(r.trigger)), outcomeName(r.outcome)}];
    if (r.error)
        ++m_agentErrors[qga::errorKindName(r.error->kind)];
    DomainSeries& d = m_domains[r.domain];
    if (r.outcome != Outcome::Cancelled)
        d.configProblem = r.configProblem ? 1 : 0;
    if (r.after)
        d.offsetNs = r.after->offsetNs;
    else if (r.before)
        d.offsetNs = r.before->offsetNs;
    const bool verified = r.outcome == Outcome::Synced || r.outcome == Outcome::Approximate ||
                          r.outcome == Outcome::InSync;
    if (verified)
        d.successNs = r.finishedAtNs;
    if (r.trigger == Trigger::DriftWatch)
        return; // a periodic check: only the gauges and the counter
    if (r.outcome != Outcome::Skipped && r.outcome != Outcome::Cancelled)
        d.attemptNs = r.finishedAtNs;
    if (r.before)
        m_offsetBefore.observe(std::fabs(r.before->offsetNs / 1e9));
    if (r.after && r.attempts > 0)
        m_residual.observe(std::fabs(r.after->offsetNs / 1e9));
    if (verified)
        m_latency.observe(r.latencyNs / 1e9);
    if (verified && r.coarseLatencyNs > 0)
        m_coarseLatency.observe(r.coarseLatencyNs / 1e9);
}

std::string Metrics::render(int64_t nowNs) const
{
    std::string out;
    out += "# HELP virt_clocksync_build_info The running virt-clocksyncd's version; always 1.\n"
           "# TYPE virt_clocksync_build_info gauge\n"
           "virt_clocksync_build_info{version=\"" VIRT_CLOCKSYNC_VERSION "\"} 1\n";
    char now[32];
    std::snprintf(now, sizeof(now), "%.3f", double(nowNs) / 1e9);
    out += "# HELP virt_clocksync_metrics_timestamp_seconds When these metrics were written "
           "(Unix time; the textfile is rewritten at least every minute).\n"
           "# TYPE virt_clocksync_metrics_timestamp_seconds gauge\n"
           "virt_clocksync_metrics_timestamp_seconds " +
           std::string(now) + "\n";
    out += "# HELP virt_clocksync_syncs_total Sync outcomes by trigger.\n"
           "# TYPE virt_clocksync_syncs_total counter\n";
    for (const auto& [key, n] : m_syncs)
        out += "virt_clocksync_syncs_total{trigger=\"" + key.first + "\",result=\"" + key.second +
               "\"} " + std::to_string(n) + "\n";
    out += "# HELP virt_clocksync_errors_total Failed syncs by error kind.\n"
           "# TYPE virt_clocksync_errors_total counter\n";
    for (const auto& [kind, n] : m_agentErrors)
        out += "virt_clocksync_errors_total{kind=\"" + kind + "\"} " + std::to_string(n) + "\n";
    m_offsetBefore.render(out, "virt_clocksync_offset_before_seconds",
                          "Absolute guest offset measured before a sync.");
    m_residual.render(out, "virt_clocksync_residual_seconds",
                      "Absolute verified guest offset after setting its clock.");
    m_latency.render(out, "virt_clocksync_latency_seconds",
                     "From trigger to verified outcome (after the refine).");
    m_coarseLatency.render(out, "virt_clocksync_coarse_latency_seconds",
                           "From trigger to the guest first verified within tolerance.");
    renderDomains(out);
    out += "# HELP virt_clocksync_guests_tracked Guests the daemon tracks.\n"
           "# TYPE virt_clocksync_guests_tracked gauge\n"
           "virt_clocksync_guests_tracked " +
           std::to_string(m_tracked) +
           "\n"
           "# HELP virt_clocksync_guests_pending Tracked guests with a sync queued or running.\n"
           "# TYPE virt_clocksync_guests_pending gauge\n"
           "virt_clocksync_guests_pending " +
           std::to_string(m_pending) + "\n";
    out += "# HELP virt_clocksync_libvirt_connected 1 while connected to libvirt.\n"
           "# TYPE virt_clocksync_libvirt_connected gauge\n"
           "virt_clocksync_libvirt_connected " +
           std::string(m_connected ? "1" : "0") + "\n";
    out += "# HELP virt_clocksync_libvirt_reconnects_total Connections lost and re-established.\n"
           "# TYPE virt_clocksync_libvirt_reconnects_total counter\n"
           "virt_clocksync_libvirt_reconnects_total " +
           std::to_string(m_reconnects) + "\n";
    return out;
}

namespace {

// A label value, escaped as the text format requires.
std::string label(const std::string& value)
{
    std::string escaped;
    for (char c : value) {
        if (c == '\\' || c == '"')
            escaped += '\\';
        escaped += c == '\n' ? ' ' : c;
    }
    return escaped;
}

} // namespace

// The per-domain gauges; a domain's series go when it does (forget).
void Metrics::renderDomains(std::string& out) const
{
    struct Gauge
    {
        const char* name;
        const char* help;
        std::optional<int64_t> DomainSeries::*value;
        int decimals; // ns kept for offsets, us for tolerances, ms for timestamps; 0: a count
    };
    static const Gauge gauges[] = {
        {"virt_clocksync_guest_offset_seconds", "Latest measured offset per guest (guest - host).",
         &DomainSeries::offsetNs, 9},
        {"virt_clocksync_last_success_timestamp_seconds",
         "When a guest was last verified within its tolerance (Unix time).",
         &DomainSeries::successNs, 3},
        {"virt_clocksync_last_attempt_timestamp_seconds",
         "When a sync after a trigger last ended, whatever its outcome (Unix time).",
         &DomainSeries::attemptNs, 3},
        {"virt_clocksync_guest_tolerance_seconds",
         "A guest's tolerance (its policy's tolerance-us): the offset alert's bound.",
         &DomainSeries::toleranceNs, 6},
        {"virt_clocksync_guest_config_problem",
         "1 while a guest is left alone because its policy metadata or domain XML could not "
         "be read or understood.",
         &DomainSeries::configProblem, 0},
    };
    for (const Gauge& g : gauges) {
        out += std::string("# HELP ") + g.name + " " + g.help + "\n# TYPE " + g.name + " gauge\n";
        for (const auto& [domain, series] : m_domains)
            if (const std::optional<int64_t>& v = series.*g.value) {
                char value[64];
                if (g.decimals == 0)
                    std::snprintf(value, sizeof(value), "%lld", static_cast<long long>(*v));
                else
                    std::snprintf(value, sizeof(value), "%.*f", g.decimals, double(*v) / 1e9);
                out += std::string(g.name) + "{domain=\"" + label(domain) + "\"} " + value + "\n";
            }
    }
}

QString Metrics::writeTextfile(const QString& path, int64_t nowNs) const
{
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly))
        return f.errorString();
    const std::string text = render(nowNs);
    f.write(text.data(), qint64(text.size()));
    if (!f.commit())
        return f.errorString();
    return {};
}

} // namespace clocksync
