// SPDX-License-Identifier: Apache-2.0
// QEMU guest agent (QGA) wire protocol: building requests and decoding replies.
// Replies are untrusted guest input: they are size-bounded, parsed without
// exceptions, and every malformed case becomes an Error, never a crash.
#pragma once

#include "expected.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qga {

struct AgentCommand
{
    std::string name;
    bool enabled = true;
};

struct AgentInfo
{
    std::string version;
    std::vector<AgentCommand> commands;

    // Known to the agent and not blocked with --block-rpcs.
    bool supports(std::string_view command) const;
};

namespace protocol {

// Largest reply we accept from a guest.
constexpr std::size_t kMaxReplyBytes = 64 * 1024;
// Sent before guest-sync-delimited to reset the agent's parser, and sent back
// by the agent before the sync reply so stale bytes can be skipped.
constexpr char kSyncDelimiter = '\xff';

std::string commandRequest(std::string_view command);
std::string syncRequest(int64_t id);
// Includes the leading 0xFF byte.
std::string syncDelimitedRequest(int64_t id);
std::string setTimeRequest(int64_t guestNs);
// guest-set-time without a time: the guest reloads its clock from its RTC.
std::string setTimeFromRtcRequest();

// Stream framing: takes the next reply line out of `buffer` (bytes read so
// far), dropping 0xFF delimiter bytes and lines that only hold delimiters.
// Returns nullopt when no complete line is buffered yet, and an error when
// the buffer exceeds the reply size limit without a line end.
std::optional<Expected<std::string>> takeReplyLine(std::string& buffer);

// Decodes a reply line. For {"return": ...} yields the return value as JSON
// text; for {"error": {...}} yields a typed error.
Expected<std::string> parseReturn(std::string_view reply);
Expected<void> parseEmptyReply(std::string_view reply);
Expected<int64_t> parseSyncReply(std::string_view reply);
// Nanoseconds since the epoch; negative or out-of-range values are errors.
Expected<int64_t> parseGetTimeReply(std::string_view reply);
Expected<AgentInfo> parseInfoReply(std::string_view reply);

// Maps a QGA error class and description to an ErrorKind.
ErrorKind classifyAgentError(std::string_view errorClass, std::string_view description);

} // namespace protocol
} // namespace qga
