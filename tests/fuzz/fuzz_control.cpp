// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the control-socket request parser (any local user can send one
// before the credential check refuses them).
#include "controlprotocol.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string line(reinterpret_cast<const char*>(data), size);
    auto r = clocksync::parseControlRequest(line);
    if (r)
        (void)clocksync::controlOk().dump();
    (void)clocksync::resultFromJson(nlohmann::json::parse(line, nullptr, false));
    return 0;
}
