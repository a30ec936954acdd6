// SPDX-License-Identifier: Apache-2.0
// Host checks.
#include "hostcheck.h"

#include <QFile>

#include <sys/timex.h>

namespace clocksync {

static QString readText(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QString::fromUtf8(f.read(4 * 1024 * 1024));
}

void parseCpuinfo(const QString& cpuinfo, HostCheck& out)
{
    for (const QString& line : cpuinfo.split('\n')) {
        if (!line.startsWith("flags"))
            continue;
        const QStringList flags = line.section(':', 1).split(' ', Qt::SkipEmptyParts);
        out.constantTsc = flags.contains("constant_tsc");
        out.nonstopTsc = flags.contains("nonstop_tsc");
        return; // the first processor speaks for all
    }
}

void adviseOn(HostCheck& c)
{
    if (!c.constantTsc)
        c.advice
            << "CPU lacks constant_tsc: the TSC rate changes with CPU frequency; guests may drift. "
               "Prefer hosts with constant_tsc, or disable frequency scaling.";
    if (!c.nonstopTsc)
        c.advice
            << "CPU lacks nonstop_tsc: the TSC stops in deep C-states; keep the host out of deep "
               "C-states (e.g. processor.max_cstate=1) or use hardware with nonstop_tsc.";
    if (!c.clocksource.isEmpty() && c.clocksource != "tsc" && c.clocksource != "kvm-clock")
        c.advice << QStringLiteral(
                        "Host clocksource is %1: 'tsc' is the stable, cheap choice where "
                        "the TSC is reliable.")
                        .arg(c.clocksource);
    if (!c.libvirtGuestsSyncTime.isEmpty())
        c.advice << QStringLiteral(
                        "%1 sets SYNC_TIME=1: after restoring guests libvirt-guests runs `virsh "
                        "domtime --sync`, which makes each guest re-read its RTC (whole seconds) "
                        "and can undo a verified sync by up to a second; virt-clocksyncd already "
                        "syncs restored guests, so set SYNC_TIME=0.")
                        .arg(c.libvirtGuestsSyncTime);
    if (c.ntpSynchronised == false)
        c.advice << "Host clock is not NTP/PTP synchronised: guests are set to the host clock, so "
                    "discipline the host (chronyd, systemd-timesyncd or ptp4l) first.";
}

bool syncTimeEnabled(const QString& defaultsFile)
{
    bool on = false;
    for (QString line : defaultsFile.split('\n')) {
        line = line.trimmed();
        if (line.startsWith("export "))
            line = line.mid(7).trimmed();
        if (!line.startsWith("SYNC_TIME="))
            continue;
        QString v = line.mid(10).section('#', 0, 0).trimmed();
        if (v.size() >= 2 && (v.startsWith('"') || v.startsWith('\'')))
            v = v.mid(1, v.size() - 2);
        on = v == "1";
    }
    return on;
}

HostCheck checkHost(const QString& root)
{
    HostCheck c;
    parseCpuinfo(readText(root + "/proc/cpuinfo"), c);
    const QString cs = root + "/sys/devices/system/clocksource/clocksource0/";
    c.clocksource = readText(cs + "current_clocksource").trimmed();
    c.availableClocksources =
        readText(cs + "available_clocksource").trimmed().split(' ', Qt::SkipEmptyParts);
    if (root.isEmpty()) {
        timex tx{};
        const int state = adjtimex(&tx);
        if (state >= 0) {
            c.ntpSynchronised = !(tx.status & STA_UNSYNC) && state != TIME_ERROR;
            c.estimatedErrorUs = tx.esterror;
            c.maxErrorUs = tx.maxerror;
        }
    }
    for (const char* f : {"/etc/default/libvirt-guests", "/etc/sysconfig/libvirt-guests"})
        if (syncTimeEnabled(readText(root + f)))
            c.libvirtGuestsSyncTime = QString::fromLatin1(f);
    adviseOn(c);
    return c;
}

} // namespace clocksync
