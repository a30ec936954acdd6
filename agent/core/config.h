// virt-clocksyncd.conf: INI, line based. Unknown sections/keys and bad values
// are reported as "file:line: ..., ignoring" and the default is kept, so a
// typo never stops the daemon (systemd-timesyncd / chrony habit).
#pragma once

#include "policy.h"

#include <QString>
#include <QStringList>

#include <span>

namespace clocksync {

enum class Transport { Libvirt, LibvirtRaw };
const char* transportName(Transport t);

struct DaemonConfig
{
    QString uri = QStringLiteral("qemu:///system");
    Transport transport = Transport::Libvirt;
    int concurrency = 4;
    int agentWaitSeconds = 60;   // how long a sync waits for the agent to connect
    int agentTimeoutSeconds = 5; // per agent command
    int rtcChangeMinIntervalSeconds = 10; // at most one rtc-changed sync per domain per this
    QString controlSocket;       // empty: the default for the URI
    QString controlGroup;        // group allowed on the control socket besides root
    QString metricsTextfile;     // node_exporter textfile path; empty: off
    SyncPolicy policy;           // defaults for every domain
};

struct ConfigParse
{
    DaemonConfig config;
    QStringList warnings;
};

// Every key the parser accepts, by section. The shipped config file documents
// each one (tested), and a key outside this list is reported as unknown.
struct ConfigKey
{
    const char* section;
    const char* key;
    QString (*value)(const DaemonConfig&); // in config-file syntax
};
std::span<const ConfigKey> configKeys();

// The value of one key in config-file syntax; null for a key not in configKeys().
QString configValue(const DaemonConfig& c, const ConfigKey& k);
// Every key, by section, in config-file syntax (what --check-config prints;
// parseConfig reads it back to the same settings).
QString formatConfig(const DaemonConfig& c);

ConfigParse parseConfig(const QString& text, const QString& fileName);
// Reads and parses a file; an unreadable file is a warning, defaults are kept.
ConfigParse loadConfig(const QString& path);

} // namespace clocksync
