// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the domain XML facts and the arithmetic on guest times. The
// first 24 bytes give a sample's host time, guest time (a guest may report
// any time, libvirt's year-1677 floor included) and round trip; the rest is
// the XML. Under UBSan an overflow anywhere is a crash.
#include "domainxml.h"
#include "sample.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    int64_t t[3] = {0, 0, 0};
    const size_t head = size < sizeof(t) ? size : sizeof(t);
    std::memcpy(t, data, head);
    // Host times are the host's clock (within +/-2^62 ns, ~146 years of 1970);
    // the guest's is anything.
    const int64_t host = t[0] % (int64_t(1) << 62);
    qga::TimeSample s{host, t[1], host + int64_t(uint64_t(t[2]) % 10'000'000'000ULL)};
    const int64_t offset = s.offsetNs();
    if (std::llabs(offset) < 0) // llabs must be defined for every offset
        __builtin_trap();
    const QString xml =
        QString::fromUtf8(reinterpret_cast<const char*>(data + head), qsizetype(size - head));
    const qga::Expected<clocksync::DomainFacts> f = clocksync::parseDomainFacts(xml, t[2] % 86'400);
    if (!f)
        return 0;
    for (clocksync::SyncMode m : {clocksync::SyncMode::Host, clocksync::SyncMode::HostUtc,
                                  clocksync::SyncMode::Rtc, clocksync::SyncMode::Off}) {
        const clocksync::IntendedTime target = clocksync::intendedTime(*f, m);
        // What ShiftedAgent does with a reading and a set.
        const int64_t relative = qga::saturatingSub(s.guestNs, target.shiftNs);
        const int64_t aimed = s.hostMidpointNs() / 2 + target.shiftNs; // a host time + the shift
        if (target.leaveAlone && target.shiftNs != 0)
            __builtin_trap();
        (void)relative;
        (void)aimed;
    }
    return 0;
}
