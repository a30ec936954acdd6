// SPDX-License-Identifier: Apache-2.0
// check-guest --deep: the guest's own timekeeping, per the RHEL timing guide
// (kvm-clock; NTP/chrony in the guest; ptp_kvm + "refclock PHC /dev/ptp0").
// Needs guest-exec, run only when the domain's policy says guest-exec=yes.
#pragma once

#include "guestagent.h"
#include "libvirthandles.h"

#include <QMap>
#include <QString>
#include <QStringList>

#include <memory>

namespace clocksync {

struct GuestHealth
{
    QMap<QString, QStringList> facts; // key -> values, as the probe printed them
    QStringList advice;
};

// The shell probe run in the guest (POSIX sh; busybox is enough).
const char* guestHealthScript();
// Parses the probe's key=value output and derives the advice (pure).
GuestHealth parseGuestHealth(const QString& output);
// Runs the probe through guest-exec; error text on failure.
qga::Expected<GuestHealth> probeGuestHealth(const std::shared_ptr<virDomain>& dom,
                                            int timeoutSeconds);

} // namespace clocksync
