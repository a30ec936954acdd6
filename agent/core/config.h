// SPDX-License-Identifier: Apache-2.0
// virt-clocksyncd.conf: INI, line based, the keys of the settings table
// (settings.h). An unknown section or key, a bad value or an unreadable file
// is an error naming file and line (with a "did you mean" where a key is
// close): the daemon refuses to start on it and a reload keeps the running
// config, as chronyd and sshd do -- a typo must never turn syncing on.
#pragma once

#include "settings.h"

#include <QString>
#include <QStringList>

namespace clocksync {

struct ConfigParse
{
    DaemonConfig config;
    QStringList errors; // "file:line: what" each; the config is not to be used if any
    bool ok() const { return errors.isEmpty(); }
};

// Every key of the file, by section, in config-file syntax (what
// --check-config prints; parseConfig reads it back to the same settings).
QString formatConfig(const DaemonConfig& c);

// Parses text on top of base (defaults unless given).
ConfigParse parseConfig(const QString& text, const QString& fileName, DaemonConfig base = {});
// Reads and parses a file; an unreadable file is an error.
// Then its drop-ins, PATH.d/*.conf in name order, each on top of the last
// (a later file wins), as chrony's confdir and timesyncd's .conf.d do.
ConfigParse loadConfig(const QString& path);

inline constexpr const char* kDefaultConfigPath = "/etc/virt-clocksync/virt-clocksyncd.conf";
// The daemon's and the CLI's config: the given file (must exist) or the
// default one (if it exists, else defaults), with drop-ins either way.
ConfigParse loadEffectiveConfig(const QString& explicitPath);

} // namespace clocksync
