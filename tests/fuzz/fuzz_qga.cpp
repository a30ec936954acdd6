// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the QGA reply codec and its stream framing (guest input).
#include "protocol.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string input(reinterpret_cast<const char*>(data), size);
    // Framing: split the stream as SocketAgent does, decode every line.
    std::string buffer = input;
    while (auto line = qga::protocol::takeReplyLine(buffer)) {
        if (!*line)
            break;
        (void)qga::protocol::parseGetTimeReply(**line);
        (void)qga::protocol::parseSyncReply(**line);
        (void)qga::protocol::parseInfoReply(**line);
        (void)qga::protocol::parseEmptyReply(**line);
        (void)qga::protocol::parseReturn(**line);
    }
    (void)qga::protocol::parseGetTimeReply(input);
    return 0;
}
