// SPDX-License-Identifier: Apache-2.0
// The settings table and the row builders it is written with.
#include "settings.h"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace clocksync {

const char* transportName(Transport t)
{
    return t == Transport::LibvirtRaw ? "libvirt-raw" : "libvirt";
}

namespace {

template <typename T, typename C> C classOf(T C::*);

// The member M of the config: a DaemonConfig member, or a SyncPolicy one.
template <auto M> auto& member(DaemonConfig& c)
{
    if constexpr (std::is_same_v<decltype(classOf(M)), SyncPolicy>)
        return c.policy.*M;
    else
        return c.*M;
}
template <auto M> const auto& member(const DaemonConfig& c)
{
    return member<M>(const_cast<DaemonConfig&>(c));
}

template <auto M> constexpr auto copier()
{
    if constexpr (std::is_same_v<decltype(classOf(M)), SyncPolicy>)
        return +[](SyncPolicy& to, const SyncPolicy& from) { to.*M = from.*M; };
    else
        return static_cast<void (*)(SyncPolicy&, const SyncPolicy&)>(nullptr);
}

enum Scope : bool { HostOnly = false, PerDomain = true };

template <auto M> constexpr Setting boolKey(const char* section, const char* key, Scope scope)
{
    return {section,
            key,
            scope,
            ValueKind::Bool,
            "yes or no",
            [](DaemonConfig& c, const QString& v) {
                const auto b = parseBool(v);
                if (b)
                    member<M>(c) = *b;
                return b.has_value();
            },
            [](const DaemonConfig& c) { return QString::fromLatin1(member<M>(c) ? "yes" : "no"); },
            copier<M>()};
}

// An integer in [Min, Max] in the file's unit, stored multiplied by Scale
// (e.g. microseconds in the file, nanoseconds in memory).
template <auto M, int64_t Min, int64_t Max, int64_t Scale = 1>
constexpr Setting intKey(const char* section, const char* key, Scope scope, const char* expected)
{
    return {section,
            key,
            scope,
            ValueKind::Int,
            expected,
            [](DaemonConfig& c, const QString& v) {
                const auto n = parseBounded(v, Min, Max);
                if (n)
                    member<M>(c) =
                        static_cast<std::remove_reference_t<decltype(member<M>(c))>>(*n * Scale);
                return n.has_value();
            },
            [](const DaemonConfig& c) { return QString::number(member<M>(c) / Scale); },
            copier<M>()};
}

// Free text; NonEmpty rejects "".
template <auto M, bool NonEmpty = false>
constexpr Setting textKey(const char* section, const char* key, const char* expected)
{
    return {section,
            key,
            HostOnly,
            ValueKind::Text,
            expected,
            [](DaemonConfig& c, const QString& v) {
                if (NonEmpty && v.isEmpty())
                    return false;
                member<M>(c) = v;
                return true;
            },
            [](const DaemonConfig& c) {
                const QString& s = member<M>(c);
                return s.isNull() ? QString("") : s;
            },
            nullptr};
}

bool setTransport(DaemonConfig& c, const QString& v)
{
    if (v != "libvirt" && v != "libvirt-raw")
        return false;
    c.transport = v == "libvirt" ? Transport::Libvirt : Transport::LibvirtRaw;
    return true;
}

// HOST:PORT (the address is checked when the daemon binds it), or empty.
bool setListen(DaemonConfig& c, const QString& v)
{
    const qsizetype colon = v.lastIndexOf(':');
    bool ok = v.isEmpty();
    if (colon > 0) {
        const uint port = v.mid(colon + 1).toUInt(&ok);
        ok = ok && port <= 65535; // 0: any free port (logged)
    }
    if (ok)
        c.metricsListen = v;
    return ok;
}

bool setMode(DaemonConfig& c, const QString& v)
{
    const auto m = parseMode(v);
    if (m)
        c.policy.mode = *m;
    return m.has_value();
}

// 0 is off; below 10 s a watch would be a load, not a check.
bool setWatchInterval(DaemonConfig& c, const QString& v)
{
    const auto n = parseBounded(v, 0, 86'400);
    if (!n || (*n > 0 && *n < 10))
        return false;
    c.policy.watchIntervalSeconds = *n;
    return true;
}

constexpr Setting kSettings[] = {
    textKey<&DaemonConfig::uri, true>("daemon", "uri", "a libvirt URI"),
    {"daemon", "transport", HostOnly, ValueKind::Text, "libvirt or libvirt-raw", setTransport,
     [](const DaemonConfig& c) { return QString::fromLatin1(transportName(c.transport)); },
     nullptr},
    intKey<&DaemonConfig::concurrency, 1, 64>("daemon", "concurrency", HostOnly, "1..64"),
    intKey<&DaemonConfig::agentWaitSeconds, 1, 3600>("daemon", "agent-wait-seconds", HostOnly,
                                                     "1..3600"),
    intKey<&DaemonConfig::agentTimeoutSeconds, 1, 300>("daemon", "agent-timeout-seconds", HostOnly,
                                                       "1..300"),
    intKey<&DaemonConfig::rtcChangeMinIntervalSeconds, 1, 3600>("daemon", "rtc-change-min-interval",
                                                                HostOnly, "1..3600"),
    textKey<&DaemonConfig::controlSocket>("daemon", "control-socket", "a path"),
    textKey<&DaemonConfig::controlGroup>("daemon", "control-group", "a group name"),
    textKey<&DaemonConfig::metricsTextfile>("daemon", "metrics-textfile", "a path"),
    {"daemon", "metrics-listen", HostOnly, ValueKind::Text,
     "HOST:PORT, e.g. 127.0.0.1:9978, or empty (off)", setListen,
     [](const DaemonConfig& c) { return c.metricsListen.isNull() ? QString("") : c.metricsListen; },
     nullptr},
    intKey<&SyncPolicy::samples, 1, 64>("sync", "samples", HostOnly, "1..64"),
    boolKey<&SyncPolicy::enabled>("sync", "enabled", PerDomain),
    {"sync", "mode", PerDomain, ValueKind::Text, "host, host-utc, rtc or off", setMode,
     [](const DaemonConfig& c) { return QString::fromLatin1(syncModeName(c.policy.mode)); },
     copier<&SyncPolicy::mode>()},
    intKey<&SyncPolicy::toleranceNs, 0, 3'600'000'000LL, 1000>("sync", "tolerance-us", PerDomain,
                                                               "0..3600000000"),
    intKey<&SyncPolicy::targetNs, 1, 1'000'000, 1000>("sync", "target-us", PerDomain, "1..1000000"),
    intKey<&SyncPolicy::attempts, 1, 10>("sync", "attempts", PerDomain, "1..10"),
    intKey<&SyncPolicy::refineWindowNs, 0, 300, 1'000'000'000>(
        "sync", "refine-window-seconds", PerDomain, "0 (no refine phase)..300"),
    boolKey<&SyncPolicy::syncOnBoot>("sync", "sync-on-boot", PerDomain),
    {"sync", "watch-interval", PerDomain, ValueKind::Int, "0 (off) or 10..86400 seconds",
     setWatchInterval,
     [](const DaemonConfig& c) { return QString::number(c.policy.watchIntervalSeconds); },
     copier<&SyncPolicy::watchIntervalSeconds>()},
    boolKey<&SyncPolicy::watchCorrect>("sync", "watch-correct", PerDomain),
    boolKey<&SyncPolicy::onRtcChange>("sync", "on-rtc-change", PerDomain),
    intKey<&SyncPolicy::maxBackwardStepNs, 0, 86'400'000, 1'000'000>(
        "sync", "max-backward-step-ms", PerDomain, "0 (no limit)..86400000"),
    // Per domain only: the host-wide file has no business allowing commands in guests.
    boolKey<&SyncPolicy::allowGuestExec>(nullptr, "guest-exec", PerDomain),
};

} // namespace

std::span<const Setting> settings()
{
    return kSettings;
}

const Setting* findSetting(const char* section, const QString& key)
{
    for (const Setting& s : kSettings)
        if (qstrcmp(s.section, section) == 0 && key == QLatin1String(s.key))
            return &s;
    return nullptr;
}

const Setting* findDomainSetting(const QString& key)
{
    for (const Setting& s : kSettings)
        if (s.perDomain && key == QLatin1String(s.key))
            return &s;
    return nullptr;
}

namespace {

int editDistance(const QString& a, const QString& b)
{
    std::vector<int> row(size_t(b.size()) + 1);
    for (size_t j = 0; j < row.size(); ++j)
        row[j] = int(j);
    for (qsizetype i = 1; i <= a.size(); ++i) {
        int diagonal = row[0];
        row[0] = int(i);
        for (qsizetype j = 1; j <= b.size(); ++j) {
            const int up = row[size_t(j)];
            row[size_t(j)] = std::min(
                {up + 1, row[size_t(j - 1)] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row.back();
}

} // namespace

QString closestMatch(const QString& word, const QStringList& candidates)
{
    QString best;
    int bestDistance = 3;
    for (const QString& c : candidates) {
        const int d = c.startsWith(word) && word.size() >= 3 ? 1 : editDistance(word, c);
        if (d < bestDistance) {
            best = c;
            bestDistance = d;
        }
    }
    return best;
}

std::optional<QString> applySetting(const Setting& s, DaemonConfig& c, const QString& value)
{
    if (s.set(c, value))
        return std::nullopt;
    return QStringLiteral("invalid value '%1' for '%2' (expected %3)")
        .arg(value, QLatin1String(s.key), QLatin1String(s.expected));
}

bool needsRestart(const char* key)
{
    for (const char* k : {"uri", "transport", "concurrency", "agent-timeout-seconds",
                          "control-socket", "control-group", "metrics-listen"})
        if (qstrcmp(k, key) == 0)
            return true;
    return false;
}

} // namespace clocksync
