// SPDX-License-Identifier: Apache-2.0
// What the daemon tells the world about its syncs: one log line per outcome
// (journald fields under systemd), and the metrics (control socket, optional
// node_exporter textfile).
#pragma once

#include "clock.h"
#include "metrics.h"
#include "syncresult.h"

#include <QString>

#include <map>
#include <string>
#include <vector>

namespace clocksync {

class Reporter
{
public:
    Reporter(QString metricsTextfile, const qga::Clock& clock)
        : m_textfile(std::move(metricsTextfile)), m_clock(clock)
    {
    }

    // A sync's outcome: logged and counted. A skip for a standing reason of
    // the domain (no agent channel, absolute clock) is logged when first seen
    // and when the reason changes, not on every trigger; a policy's skip is
    // the operator's own choice and is logged each time.
    void record(const SyncResult& r);
    // The domain is gone: its log memory and metric series too.
    void forget(const std::string& uuid, const std::string& name);
    // Gauges, then the textfile (if configured) is rewritten.
    void update(bool connected, int reconnects, int tracked, int pending);
    const Metrics& metrics() const { return m_metrics; }
    Metrics& metrics() { return m_metrics; }
    // The metrics in the text format, as of now.
    std::string metricsText() const { return m_metrics.render(m_clock.realtimeNs()); }
    // A new path (reload): the old file is removed. Empty: none.
    void setTextfile(const QString& path);
    // The daemon stops: a textfile left behind would report it alive.
    void removeTextfile() const;

private:
    QString m_textfile;
    const qga::Clock& m_clock;
    Metrics m_metrics;
    std::map<std::string, std::string> m_skipNote; // uuid -> why its last result was skipped
};

// Logs one line per sync outcome (journald fields when under journald).
void logSyncResult(const SyncResult& r);
// The structured journald fields of a result ("KEY=value"), MESSAGE first.
std::vector<std::string> journalFields(const SyncResult& r);

} // namespace clocksync
