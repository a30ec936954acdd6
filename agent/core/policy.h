// SPDX-License-Identifier: Apache-2.0
// Sync policy: daemon-wide defaults, and the per-domain override kept in the
// domain's own libvirt metadata under our namespace, e.g.
//   virsh metadata DOM --uri https://virt-clocksync.org/xmlns/policy/1
//         --key clocksync --set '<policy mode="off"/>' --live --config
// Metadata the daemon cannot understand -- not XML, an unknown key, a bad
// value -- makes the guest's policy invalid: the guest is left alone (outcome
// skipped, with the reason) until the operator fixes it.
#pragma once

#include <QMetaType>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <optional>

namespace clocksync {

inline constexpr const char* kMetadataUri = "https://virt-clocksync.org/xmlns/policy/1";
inline constexpr const char* kMetadataKey = "clocksync";

// host: the guest's intended time (host UTC, or UTC + the adjustment of a
// variable clock; an absolute clock is left alone); host-utc: host UTC
// whatever the domain's <clock> says (the explicit override); rtc: the guest
// re-reads its RTC; off: never set.
enum class SyncMode { Host, HostUtc, Rtc, Off };
const char* syncModeName(SyncMode mode);

struct SyncPolicy
{
    bool enabled = true;
    SyncMode mode = SyncMode::Host;
    int64_t toleranceNs = 1'000'000; // tolerance-us: leave a guest this close alone
    int64_t targetNs = 50'000;       // once we set, land at least this close
    int attempts = 5;                // set+verify rounds
    int samples = 5;                 // get-time calls per measurement
    // Once a guest is within tolerance, further sets (toward the target) wait
    // for a quiet path -- a get-time round trip back near the domain's floor
    // -- for at most this long; 0: no refine phase.
    int64_t refineWindowNs = 5'000'000'000;
    bool syncOnBoot = false;
    int64_t watchIntervalSeconds = 0; // drift watch: measure every N s (0: off)
    bool watchCorrect = false;        // drift watch: also correct what it finds
    bool allowGuestExec = false;      // check-guest --deep may run commands in the guest
    // Reconcile and host clock steps never step a guest back by more than
    // this (0: no limit): a guest ahead by more is left alone, with the reason.
    int64_t maxBackwardStepNs = 0;
    bool onRtcChange = true;  // refine after someone else sets the clock (RTC_CHANGE)
    bool measureOnly = false; // internal: a drift-watch check that must not set

    // Whether this policy syncs at all (enabled=no and mode=off both say no).
    bool active() const { return enabled && mode != SyncMode::Off; }
};

// A domain's override: the keys it sets (per-domain rows of the settings
// table, settings.h) and their values; every other member of `values` is unused.
struct PolicyOverride
{
    SyncPolicy values;
    QStringList keys; // the keys set, each once
    QString resync;   // opaque; changing it asks for a sync

    bool has(const char* key) const { return keys.contains(QLatin1String(key)); }
    bool isEmpty() const { return keys.isEmpty() && resync.isEmpty(); }
};

SyncPolicy applyOverride(SyncPolicy base, const PolicyOverride& o);

// What an operator's request asks beyond the policy (virt-clocksync sync
// --samples/--attempts): applied to that request's job only.
struct RequestTuning
{
    int samples = 0;  // 0: the policy's
    int attempts = 0; // 0: the policy's
    void applyTo(SyncPolicy& p) const
    {
        if (samples > 0)
            p.samples = samples;
        if (attempts > 0)
            p.attempts = attempts;
    }
};

struct PolicyParse
{
    PolicyOverride policy; // only meaningful when ok()
    QStringList errors;    // what could not be understood; the guest is left alone
    bool ok() const { return errors.isEmpty(); }
    // A running domain whose persistent definition carries another policy
    // than the live one (virsh define, virt-manager's XML editor): that
    // policy's XML ("" for none), which libvirt applies at the next boot.
    std::optional<QString> nextBoot;
};

// Parses the <policy .../> element libvirt returns for our namespace.
PolicyParse parsePolicyXml(const QString& xml);
// The element to store (attributes that are set only).
QString policyToXml(const PolicyOverride& o);
// Sets one key=value as given on the command line; returns an error text.
std::optional<QString> setPolicyKey(PolicyOverride& o, const QString& key, const QString& value);

// Value parsers shared by the config file and the metadata.
std::optional<bool> parseBool(const QString& s);
std::optional<SyncMode> parseMode(const QString& s);
std::optional<int64_t> parseBounded(const QString& s, int64_t min, int64_t max);

} // namespace clocksync

Q_DECLARE_METATYPE(clocksync::SyncPolicy)
