// virt-clocksync, the operator's CLI: argument handling and the commands.
// Exit codes (documented in --help and the man page).
#pragma once

#include <QStringList>

namespace clocksync::cli {

enum ExitCode {
    ExitOk = 0,
    ExitFailure = 1,        // the operation failed (see the message)
    ExitUsage = 2,          // bad command line
    ExitOutOfTolerance = 3, // measured or left outside tolerance
    ExitAgentUnavailable = 4,
    ExitConnection = 5, // cannot reach libvirt or the daemon
};

int run(const QStringList& args);

} // namespace clocksync::cli
