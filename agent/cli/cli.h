// SPDX-License-Identifier: Apache-2.0
// virt-clocksync, the operator's CLI. One table of commands (cli.cpp) drives
// parsing, help and dispatch; each command's handler is in cmd_*.cpp.
//   cli.cpp            command table, option parsing (QCommandLineParser), help
//   common.*           Invocation, output, exit codes, libvirt lookups
//   controlclient.*    the daemon's control socket
//   cmd_sync.cpp       sync, offset        cmd_daemon.cpp  status, metrics
//   cmd_check.cpp      check-host, check-guest (+ hostcheck, guesthealth)
//   cmd_policy.cpp     policy (a loop over the settings table)
#pragma once

#include <QStringList>

#include <span>

namespace clocksync::cli {

enum ExitCode {
    ExitOk = 0,
    ExitFailure = 1,        // the operation failed (see the message)
    ExitUsage = 2,          // bad command line
    ExitOutOfTolerance = 3, // measured or left outside tolerance
    ExitAgentUnavailable = 4,
    ExitConnection = 5, // cannot reach libvirt or the daemon
};

struct Invocation;

struct OptionSpec
{
    const char* names;     // "samples", or "c,connect" for several
    const char* valueName; // null: a flag
    const char* help;
};

struct Command
{
    const char* name;
    const char* args;     // positional arguments, as shown in usage
    int minArgs, maxArgs; // maxArgs -1: any number
    const char* summary;  // one line in the command list
    const char* help;     // `help COMMAND`
    std::span<const OptionSpec> options;
    int (*run)(const Invocation&);
    void (*moreHelp)() = nullptr; // generated help after `help` (e.g. policy's keys)
};

// Every command (without `help`, which run() handles).
std::span<const Command> commands();
// Options every command takes.
std::span<const OptionSpec> globalOptions();

// argv without the program name; returns the exit code.
int run(const QStringList& args);

} // namespace clocksync::cli
