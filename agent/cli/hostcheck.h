// SPDX-License-Identifier: Apache-2.0
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
    // libvirt-guests' SYNC_TIME=1 (the file that sets it), else empty.
    QString libvirtGuestsSyncTime;
    QStringList advice; // empty: all good
};

// cpuinfo flags of the first processor.
void parseCpuinfo(const QString& cpuinfo, HostCheck& out);
void adviseOn(HostCheck& c);
// Whether a libvirt-guests defaults file turns SYNC_TIME on (shell syntax:
// the last assignment wins; a commented one does not count).
bool syncTimeEnabled(const QString& defaultsFile);
// Reads /proc, /sys and adjtimex of this host.
HostCheck checkHost(const QString& root = QString());

} // namespace clocksync
