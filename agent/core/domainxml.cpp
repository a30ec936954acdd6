// SPDX-License-Identifier: Apache-2.0
#include "domainxml.h"

#include "syncresult.h"

#include <QStringList>
#include <QXmlStreamReader>

#include <cstdlib>

namespace clocksync {

namespace {

// <clock offset=... adjustment=... basis=...>; an error text if not understood.
std::optional<std::string> readClock(const QXmlStreamAttributes& a, int64_t hostUtcOffsetS,
                                     DomainFacts& f)
{
    const QString offset = a.value("offset").toString();
    if (offset.isEmpty() || offset == "utc" || offset == "localtime" || offset == "timezone") {
        f.clock = DomainFacts::Clock::Utc;
        return std::nullopt;
    }
    if (offset == "absolute") {
        f.clock = DomainFacts::Clock::Absolute;
        return std::nullopt;
    }
    if (offset != "variable")
        return "clock offset='" + offset.toStdString() + "' is not one this version knows";
    const QString basis = a.value("basis").toString();
    if (!basis.isEmpty() && basis != "utc" && basis != "localtime")
        return "clock basis='" + basis.toStdString() + "' is not one this version knows";
    bool ok = true;
    const QString text = a.value("adjustment").toString().trimmed();
    const qlonglong s = text.isEmpty() ? 0 : text.toLongLong(&ok);
    if (!ok || s > kMaxAdjustmentS || s < -kMaxAdjustmentS)
        return "clock adjustment='" + text.toStdString() + "' is not a plausible number of seconds";
    f.clock = DomainFacts::Clock::Variable;
    f.adjustmentNs = s * 1'000'000'000LL;
    f.localtimeBasis = basis == "localtime";
    f.rtcAheadNs = f.localtimeBasis ? hostUtcOffsetS * 1'000'000'000LL : 0;
    return std::nullopt;
}

} // namespace

qga::Expected<DomainFacts> parseDomainFacts(const QString& xml, int64_t hostUtcOffsetS)
{
    DomainFacts f;
    bool qemu = false;
    bool agent = false;
    bool seenDomain = false;
    QXmlStreamReader r(xml);
    QStringList path;
    while (!r.atEnd()) {
        const QXmlStreamReader::TokenType t = r.readNext();
        if (t == QXmlStreamReader::EndElement) {
            path.removeLast();
            continue;
        }
        if (t != QXmlStreamReader::StartElement)
            continue;
        path.append(r.name().toString());
        const QXmlStreamAttributes a = r.attributes();
        if (path == QStringList{"domain"}) {
            seenDomain = true;
            qemu =
                a.value("type") == QLatin1String("qemu") || a.value("type") == QLatin1String("kvm");
        } else if (path == QStringList{"domain", "clock"}) {
            if (std::optional<std::string> err = readClock(a, hostUtcOffsetS, f))
                return qga::makeError(qga::ErrorKind::Protocol, "domain XML: " + *err);
        } else if (path == QStringList{"domain", "devices", "channel", "target"} &&
                   a.value("name") == QLatin1String("org.qemu.guest_agent.0")) {
            agent = true;
            if (a.hasAttribute("state"))
                f.agentConnected = a.value("state") == QLatin1String("connected");
        }
    }
    if (r.hasError())
        return qga::makeError(qga::ErrorKind::Protocol,
                              "domain XML does not parse: " + r.errorString().toStdString());
    if (!seenDomain)
        return qga::makeError(qga::ErrorKind::Protocol, "domain XML has no <domain> element");
    // The channel is how QEMU reaches its guest agent; other drivers (libvirt's
    // test driver, say) answer the time calls without one.
    f.agentChannel = agent || !qemu;
    return f;
}

DomainFacts withConfiguredClock(DomainFacts live, const DomainFacts& inactive)
{
    if (inactive.clock != DomainFacts::Clock::Variable)
        return live;
    // A running guest defined with basis='localtime': its live XML says
    // basis='utc' with the host's UTC offset added (docs/design.md §5).
    if (inactive.localtimeBasis && !live.localtimeBasis) {
        live.adjustmentNs -= inactive.rtcAheadNs;
        live.rtcAheadNs = inactive.rtcAheadNs; // remembered, should it turn transient
    }
    live.configuredAdjustmentNs = inactive.adjustmentNs;
    return live;
}

qga::Expected<DomainFacts> composeFacts(const QString& liveXml,
                                        const std::function<std::optional<QString>()>& inactiveXml,
                                        int64_t hostUtcOffsetS)
{
    qga::Expected<DomainFacts> live = parseDomainFacts(liveXml, hostUtcOffsetS);
    if (!live || live->clock != DomainFacts::Clock::Variable)
        return live;
    const std::optional<QString> inactive = inactiveXml();
    if (!inactive)
        return live;
    if (qga::Expected<DomainFacts> configured = parseDomainFacts(*inactive, hostUtcOffsetS))
        return withConfiguredClock(*live, *configured);
    return live;
}

namespace {

// The adjustment to keep: the configured one while the live one is within
// the RTC's whole second of it (the rounding of an RTC write, our own sets'
// included: following it would walk the guest a second at a time), the live
// one when it is further (the guest changed its clock on purpose).
int64_t adjustmentToKeep(const DomainFacts& f)
{
    if (f.configuredAdjustmentNs &&
        std::llabs(f.adjustmentNs - *f.configuredAdjustmentNs) <= kRtcSecondNs)
        return *f.configuredAdjustmentNs;
    return f.adjustmentNs;
}

} // namespace

IntendedTime intendedTime(const DomainFacts& facts, SyncMode mode)
{
    IntendedTime t;
    if (mode == SyncMode::HostUtc || mode == SyncMode::Off)
        return t; // host UTC on purpose; nothing set
    // mode=rtc: the guest re-reads its RTC, which carries the offset itself;
    // its verify is against the same intended time as a set's (before, host
    // UTC: a variable clock always "failed").
    if (facts.clock == DomainFacts::Clock::Absolute) {
        t.leaveAlone = "clock offset='absolute': the guest runs at a fixed time on purpose "
                       "(policy mode=host-utc syncs it to host UTC anyway)";
    } else if (facts.clock == DomainFacts::Clock::Variable) {
        t.shiftNs = adjustmentToKeep(facts);
        if (t.shiftNs != 0)
            t.note = "target host " + formatOffset(t.shiftNs) +
                     " (clock offset='variable'); offsets relative to it";
    }
    return t;
}

} // namespace clocksync
