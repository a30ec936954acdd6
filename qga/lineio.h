// SPDX-License-Identifier: Apache-2.0
// Blocking line I/O on a stream socket with poll() deadlines on a Clock's
// monotonic time, so it runs on any thread without an event loop. Shared by
// the guest-agent socket transport and the CLI's control-socket client.
#pragma once

#include "clock.h"
#include "expected.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace qga {

// Takes one complete line off the front of a buffer, if there is one (an
// error for a line that can never be valid, e.g. one that is too long).
using TakeLine = std::function<std::optional<Expected<std::string>>(std::string& buffer)>;

// Everything before the first '\n', at most maxBytes; the line's end not in
// sight within maxBytes is an error.
TakeLine newlineTaker(std::size_t maxBytes);

// peer names the other side in error messages ("guest agent", "the daemon").
Expected<void> writeAllBy(int fd, std::string_view data, int64_t deadlineNs, const Clock& clock,
                          const char* peer);
// Reads until take() yields a line; bytes after it stay in buffer.
Expected<std::string> readLineBy(int fd, std::string& buffer, const TakeLine& take,
                                 int64_t deadlineNs, const Clock& clock, const char* peer);

} // namespace qga
