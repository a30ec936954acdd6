// Host timekeeping checks from the RHEL "KVM Guest Timing Management" guide:
// constant/nonstop TSC, the clocksource, and whether NTP/PTP disciplines the
// host clock. Parsers are pure functions over file contents (fixture-tested).
#pragma once

#include <QString>
#include <QStringList>

#include <optional>

namespace clocksync {

struct HostCheck
{
    bool constantTsc = false;
    bool nonstopTsc = false;
    QString clocksource;
    QStringList availableClocksources;
    std::optional<bool> ntpSynchronised; // from adjtimex: STA_UNSYNC clear
    long long estimatedErrorUs = -1;
    long long maxErrorUs = -1;
    QStringList advice; // empty: all good
};

// cpuinfo flags of the first processor.
void parseCpuinfo(const QString& cpuinfo, HostCheck& out);
void adviseOn(HostCheck& c);
// Reads /proc, /sys and adjtimex of this host.
HostCheck checkHost(const QString& root = QString());

} // namespace clocksync
