// SPDX-License-Identifier: Apache-2.0
// The one table of settings. Each row is a key: its section in
// virt-clocksyncd.conf, whether a domain may override it in its metadata, its
// parser and printer. The config file, the domain metadata (<policy .../>),
// --check-config and the CLI's `policy` output are loops over this table, so
// adding a key is adding one row (and its member in DaemonConfig/SyncPolicy).
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
    int agentWaitSeconds = 60;            // how long a sync waits for the agent to connect
    int agentTimeoutSeconds = 5;          // per agent command
    int rtcChangeMinIntervalSeconds = 10; // at most one rtc-changed sync per domain per this
    QString controlSocket;                // empty: the default for the URI
    QString controlGroup;                 // group allowed on the control socket besides root
    QString metricsTextfile;              // node_exporter textfile path; empty: off
    QString metricsListen;                // HOST:PORT of the /metrics endpoint; empty: off
    SyncPolicy policy;                    // defaults for every domain
};

// How a value reads in JSON (the CLI's --json output).
enum class ValueKind { Bool, Int, Text };

struct Setting
{
    const char* section; // "daemon" or "sync"; null: domain metadata only
    const char* key;     // as in the file and the metadata attribute
    bool perDomain;      // a domain's <policy/> may set it
    ValueKind kind;
    const char* expected; // what a valid value looks like, for errors
    // Parses value into c; false if it is not valid.
    bool (*set)(DaemonConfig& c, const QString& value);
    // The value in c, in config-file syntax (never null).
    QString (*get)(const DaemonConfig& c);
    // Copies the member from one policy to another (per-domain keys only).
    void (*copy)(SyncPolicy& to, const SyncPolicy& from);
};

// Every setting, by section (the order --check-config prints).
std::span<const Setting> settings();
// The row for a config-file section/key; null if there is none.
const Setting* findSetting(const char* section, const QString& key);
// The row of a per-domain key; null if key is not one.
const Setting* findDomainSetting(const QString& key);

// Whether a [daemon] key is applied only by a restart (the connection, the
// worker count, the sockets), not by a reload.
bool needsRestart(const char* key);

// The candidate closest to word (edit distance at most 2, or a prefix), or
// empty: the "did you mean" of an error.
QString closestMatch(const QString& word, const QStringList& candidates);

// Sets one key from text; an error text ("invalid value ...") if invalid.
std::optional<QString> applySetting(const Setting& s, DaemonConfig& c, const QString& value);

} // namespace clocksync
