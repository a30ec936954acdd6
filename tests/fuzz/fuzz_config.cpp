// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the daemon config parser.
#include "config.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const QString text = QString::fromUtf8(reinterpret_cast<const char*>(data), qsizetype(size));
    clocksync::ConfigParse p = clocksync::parseConfig(text, "fuzz.conf");
    // Whatever the input, the result stays within the documented bounds.
    const clocksync::DaemonConfig& c = p.config;
    if (c.concurrency < 1 || c.concurrency > 64 || c.policy.attempts < 1 ||
        c.policy.attempts > 10 || c.policy.samples < 1 || c.policy.samples > 64 ||
        c.policy.targetNs < 1000 || c.policy.toleranceNs < 0)
        __builtin_trap();
    // What --check-config prints reads back, without a warning, to the same settings.
    const QString shown = clocksync::formatConfig(c);
    clocksync::ConfigParse again = clocksync::parseConfig(shown, "shown.conf");
    if (!again.errors.isEmpty() || clocksync::formatConfig(again.config) != shown)
        __builtin_trap();
    return 0;
}
