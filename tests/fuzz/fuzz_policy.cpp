// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the domain-metadata policy parser (anyone with write access to
// the domain's metadata controls this input).
#include "policy.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const QString xml = QString::fromUtf8(reinterpret_cast<const char*>(data), qsizetype(size));
    clocksync::PolicyParse p = clocksync::parsePolicyXml(xml);
    // What we parse, we must be able to write back and read again the same.
    clocksync::PolicyParse again = clocksync::parsePolicyXml(clocksync::policyToXml(p.policy));
    const clocksync::SyncPolicy a = clocksync::applyOverride({}, p.policy);
    const clocksync::SyncPolicy b = clocksync::applyOverride({}, again.policy);
    // The keys are a set: the parse keeps the attributes' order, the writer the table's.
    QStringList keysA = p.policy.keys, keysB = again.policy.keys;
    keysA.sort();
    keysB.sort();
    if (!again.errors.isEmpty() || keysA != keysB || again.policy.resync != p.policy.resync ||
        a.mode != b.mode || a.attempts != b.attempts || a.toleranceNs != b.toleranceNs ||
        clocksync::policyToXml(again.policy) != clocksync::policyToXml(p.policy))
        __builtin_trap();
    return 0;
}
