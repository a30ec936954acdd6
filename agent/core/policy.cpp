// Policy parsing and merging.
#include "policy.h"

#include <QXmlStreamReader>
#include <QXmlStreamWriter>

namespace clocksync {

const char* syncModeName(SyncMode mode)
{
    switch (mode) {
    case SyncMode::Host:
        return "host";
    case SyncMode::Rtc:
        return "rtc";
    case SyncMode::Off:
        return "off";
    }
    return "host";
}

std::optional<bool> parseBool(const QString& s)
{
    const QString v = s.trimmed().toLower();
    if (v == "yes" || v == "true" || v == "on" || v == "1")
        return true;
    if (v == "no" || v == "false" || v == "off" || v == "0")
        return false;
    return std::nullopt;
}

std::optional<SyncMode> parseMode(const QString& s)
{
    const QString v = s.trimmed().toLower();
    if (v == "host")
        return SyncMode::Host;
    if (v == "rtc")
        return SyncMode::Rtc;
    if (v == "off")
        return SyncMode::Off;
    return std::nullopt;
}

std::optional<int64_t> parseBounded(const QString& s, int64_t min, int64_t max)
{
    bool ok = false;
    const qlonglong v = s.trimmed().toLongLong(&ok);
    if (!ok || v < min || v > max)
        return std::nullopt;
    return int64_t(v);
}

bool PolicyOverride::isEmpty() const
{
    return !enabled && !mode && !skipBelowNs && !targetNs && !attempts && !syncOnBoot &&
           !watchIntervalS && !watchCorrect && !allowGuestExec && !maxBackwardStepNs && !onRtcChange &&
           resync.isEmpty();
}

SyncPolicy applyOverride(SyncPolicy p, const PolicyOverride& o)
{
    if (o.enabled)
        p.enabled = *o.enabled;
    if (o.mode)
        p.mode = *o.mode;
    if (o.skipBelowNs)
        p.skipBelowNs = *o.skipBelowNs;
    if (o.targetNs)
        p.targetNs = *o.targetNs;
    if (o.attempts)
        p.attempts = *o.attempts;
    if (o.syncOnBoot)
        p.syncOnBoot = *o.syncOnBoot;
    if (o.watchIntervalS)
        p.watchIntervalS = *o.watchIntervalS;
    if (o.watchCorrect)
        p.watchCorrect = *o.watchCorrect;
    if (o.allowGuestExec)
        p.allowGuestExec = *o.allowGuestExec;
    if (o.maxBackwardStepNs)
        p.maxBackwardStepNs = *o.maxBackwardStepNs;
    if (o.onRtcChange)
        p.onRtcChange = *o.onRtcChange;
    return p;
}

// Limits: tolerance up to 1 h, target up to 1 s, 1..10 attempts.
std::optional<QString> setPolicyKey(PolicyOverride& o, const QString& key, const QString& value)
{
    auto bad = [&](const char* expected) {
        return QStringLiteral("invalid value '%1' for '%2' (expected %3)")
            .arg(value, key, expected);
    };
    if (key == "enabled" || key == "sync-on-boot" || key == "watch-correct" ||
        key == "guest-exec" || key == "on-rtc-change") {
        auto b = parseBool(value);
        if (!b)
            return bad("yes or no");
        (key == "enabled"         ? o.enabled
         : key == "sync-on-boot"  ? o.syncOnBoot
         : key == "guest-exec"    ? o.allowGuestExec
         : key == "on-rtc-change" ? o.onRtcChange
                                  : o.watchCorrect) = *b;
    } else if (key == "watch-interval") {
        auto v = parseBounded(value, 0, 86'400);
        if (!v || (*v > 0 && *v < 10))
            return bad("0 (off) or 10..86400 seconds");
        o.watchIntervalS = *v;
    } else if (key == "mode") {
        auto m = parseMode(value);
        if (!m)
            return bad("host, rtc or off");
        o.mode = *m;
    } else if (key == "tolerance-us") {
        auto v = parseBounded(value, 0, 3'600'000'000LL);
        if (!v)
            return bad("0..3600000000");
        o.skipBelowNs = *v * 1000;
    } else if (key == "target-us") {
        auto v = parseBounded(value, 1, 1'000'000);
        if (!v)
            return bad("1..1000000");
        o.targetNs = *v * 1000;
    } else if (key == "attempts") {
        auto v = parseBounded(value, 1, 10);
        if (!v)
            return bad("1..10");
        o.attempts = int(*v);
    } else if (key == "max-backward-step-ms") {
        auto v = parseBounded(value, 0, 86'400'000);
        if (!v)
            return bad("0 (no limit)..86400000");
        o.maxBackwardStepNs = *v * 1'000'000;
    } else if (key == "resync") {
        o.resync = value;
    } else {
        return QStringLiteral("unknown policy key '%1'").arg(key);
    }
    return std::nullopt;
}

PolicyParse parsePolicyXml(const QString& xml)
{
    PolicyParse out;
    QXmlStreamReader r(xml);
    while (!r.atEnd() && !r.isStartElement())
        r.readNext();
    if (r.hasError() || !r.isStartElement()) {
        out.warnings
            << QStringLiteral("policy metadata is not XML (%1), ignoring").arg(r.errorString());
        return out;
    }
    if (r.name() != QLatin1String("policy")) {
        out.warnings << QStringLiteral(
                            "policy metadata element is <%1>, expected <policy>, ignoring")
                            .arg(r.name().toString());
        return out;
    }
    for (const QXmlStreamAttribute& a : r.attributes()) {
        if (!a.prefix().isEmpty() && a.prefix() == QLatin1String("xmlns"))
            continue;
        if (auto err = setPolicyKey(out.policy, a.name().toString(), a.value().toString()))
            out.warnings << *err + QStringLiteral(", ignoring");
    }
    // The element must be well-formed to the end.
    while (!r.atEnd())
        r.readNext();
    if (r.hasError()) {
        out.warnings
            << QStringLiteral("policy metadata is malformed (%1), ignoring").arg(r.errorString());
        out.policy = {};
    }
    return out;
}

QString policyToXml(const PolicyOverride& o)
{
    QString xml;
    QXmlStreamWriter w(&xml);
    w.writeStartElement("policy");
    if (o.enabled)
        w.writeAttribute("enabled", *o.enabled ? "yes" : "no");
    if (o.mode)
        w.writeAttribute("mode", syncModeName(*o.mode));
    if (o.skipBelowNs)
        w.writeAttribute("tolerance-us", QString::number(*o.skipBelowNs / 1000));
    if (o.targetNs)
        w.writeAttribute("target-us", QString::number(*o.targetNs / 1000));
    if (o.attempts)
        w.writeAttribute("attempts", QString::number(*o.attempts));
    if (o.syncOnBoot)
        w.writeAttribute("sync-on-boot", *o.syncOnBoot ? "yes" : "no");
    if (o.watchIntervalS)
        w.writeAttribute("watch-interval", QString::number(*o.watchIntervalS));
    if (o.watchCorrect)
        w.writeAttribute("watch-correct", *o.watchCorrect ? "yes" : "no");
    if (o.allowGuestExec)
        w.writeAttribute("guest-exec", *o.allowGuestExec ? "yes" : "no");
    if (o.onRtcChange)
        w.writeAttribute("on-rtc-change", *o.onRtcChange ? "yes" : "no");
    if (o.maxBackwardStepNs)
        w.writeAttribute("max-backward-step-ms", QString::number(*o.maxBackwardStepNs / 1'000'000));
    if (!o.resync.isEmpty())
        w.writeAttribute("resync", o.resync);
    w.writeEndElement();
    return xml;
}

} // namespace clocksync
