// SPDX-License-Identifier: Apache-2.0
// Guest timekeeping health.
#include "guesthealth.h"

#include "clock.h"

#include <libvirt/libvirt-qemu.h>
#include <nlohmann/json.hpp>

#include <QByteArray>
#include <QThread>

namespace clocksync {

using nlohmann::json;

const char* guestHealthScript()
{
    return "cs=/sys/devices/system/clocksource/clocksource0;"
           "echo clocksource=$(cat $cs/current_clocksource 2>/dev/null);"
           "echo available=$(cat $cs/available_clocksource 2>/dev/null);"
           "if [ -d /sys/module/ptp_kvm ]; then echo ptp_kvm=yes; else echo ptp_kvm=no; fi;"
           "for p in /dev/ptp*; do [ -e \"$p\" ] && echo ptp_device=$p; done;"
           "for d in chronyd ntpd systemd-timesyncd ptp4l phc2sys; do"
           "  pidof $d >/dev/null 2>&1 && echo time_daemon=$d; done;"
           "command -v chronyc >/dev/null 2>&1 && chronyc -n tracking 2>/dev/null |"
           "  sed -n 's/^Leap status *: */chrony_leap=/p;s/^System time *: */chrony_offset=/p';"
           "command -v timedatectl >/dev/null 2>&1 &&"
           "  timedatectl show -p NTPSynchronized 2>/dev/null | sed "
           "'s/^NTPSynchronized=/ntp_synchronized=/';"
           "true";
}

GuestHealth parseGuestHealth(const QString& output)
{
    GuestHealth h;
    for (const QString& line : output.split('\n', Qt::SkipEmptyParts)) {
        const qsizetype eq = line.indexOf('=');
        if (eq > 0)
            h.facts[line.left(eq).trimmed()] << line.mid(eq + 1).trimmed();
    }
    const QString cs = h.facts.value("clocksource").value(0);
    const QString avail = h.facts.value("available").value(0);
    if (cs != "kvm-clock") {
        if (avail.contains("kvm-clock"))
            h.advice << QStringLiteral(
                            "The guest uses '%1' although kvm-clock is available: kvm-clock is "
                            "what the guide recommends for KVM guests.")
                            .arg(cs.isEmpty() ? "an unknown clocksource" : cs);
        else
            h.advice << QStringLiteral(
                            "The guest clocksource is '%1' and kvm-clock is not offered: on KVM "
                            "the guest kernel should have CONFIG_KVM_GUEST (under TCG there is "
                            "no kvm-clock).")
                            .arg(cs.isEmpty() ? "unknown" : cs);
    }
    const QStringList daemons = h.facts.value("time_daemon");
    if (daemons.isEmpty())
        h.advice << "No time daemon runs in the guest (chronyd, ntpd, systemd-timesyncd): between "
                    "virt-clocksync's syncs the guest clock only free-runs.";
    if (h.facts.value("ptp_kvm").value(0) != "yes")
        h.advice << "ptp_kvm is not loaded: with 'modprobe ptp_kvm' the guest gets /dev/ptp0 and "
                    "chronyd "
                    "can follow the host clock with 'refclock PHC /dev/ptp0 poll 2' "
                    "(sub-microsecond on KVM).";
    else if (h.facts.value("ptp_device").isEmpty())
        h.advice << "ptp_kvm is loaded but there is no /dev/ptp* device.";
    if (h.facts.value("ntp_synchronized").value(0) == "no")
        h.advice << "The guest's time daemon reports it is not synchronised.";
    return h;
}

qga::Expected<GuestHealth> probeGuestHealth(const std::shared_ptr<virDomain>& dom,
                                            int timeoutSeconds)
{
    const json exec = {
        {"execute", "guest-exec"},
        {"arguments",
         {{"path", "/bin/sh"}, {"arg", {"-c", guestHealthScript()}}, {"capture-output", true}}}};
    qga::CString reply(
        virDomainQemuAgentCommand(dom.get(), exec.dump().c_str(), timeoutSeconds, 0));
    if (!reply)
        return qga::lastLibvirtError("guest-exec");
    json r = json::parse(reply.get(), nullptr, false);
    if (r.is_discarded() || !r.contains("return") || !r["return"].contains("pid") ||
        !r["return"]["pid"].is_number_integer())
        return qga::makeError(qga::ErrorKind::Protocol, "guest-exec: unexpected reply");
    const int64_t pid = r["return"]["pid"].get<int64_t>();
    const std::string status =
        json{{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}}.dump();
    // guest-exec has no completion event: ask for the status until it exits.
    const qga::Clock& clock = qga::SystemClock::instance();
    const int64_t deadline = clock.monotonicNs() + int64_t(timeoutSeconds) * 1'000'000'000;
    while (clock.monotonicNs() < deadline) {
        qga::CString st(virDomainQemuAgentCommand(dom.get(), status.c_str(), timeoutSeconds, 0));
        if (!st)
            return qga::lastLibvirtError("guest-exec-status");
        json s = json::parse(st.get(), nullptr, false);
        if (s.is_discarded() || !s.contains("return") || !s["return"].is_object())
            return qga::makeError(qga::ErrorKind::Protocol, "guest-exec-status: unexpected reply");
        const json& ret = s["return"];
        if (ret.value("exited", false)) {
            const std::string out = ret.value("out-data", std::string());
            return parseGuestHealth(
                QString::fromUtf8(QByteArray::fromBase64(QByteArray::fromStdString(out))));
        }
        QThread::msleep(100); // the CLI's own thread; bounded by the deadline
    }
    return qga::makeError(qga::ErrorKind::Timeout, "the guest's probe did not finish in time");
}

} // namespace clocksync
