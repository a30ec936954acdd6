// SPDX-License-Identifier: Apache-2.0
// Policy parsing and merging: loops over the settings table.
#include "policy.h"
#include "settings.h"

#include <QXmlStreamReader>
#include <QXmlStreamWriter>

namespace clocksync {

const char* syncModeName(SyncMode mode)
{
    switch (mode) {
    case SyncMode::Host:
        return "host";
    case SyncMode::HostUtc:
        return "host-utc";
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
    if (v == "host-utc")
        return SyncMode::HostUtc;
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

SyncPolicy applyOverride(SyncPolicy p, const PolicyOverride& o)
{
    for (const Setting& s : settings())
        if (s.perDomain && o.has(s.key))
            s.copy(p, o.values);
    return p;
}

std::optional<QString> setPolicyKey(PolicyOverride& o, const QString& key, const QString& value)
{
    if (key == QLatin1String("resync")) {
        o.resync = value;
        return std::nullopt;
    }
    const Setting* s = findDomainSetting(key);
    if (!s) {
        QStringList keys{"resync"};
        for (const Setting& row : settings())
            if (row.perDomain)
                keys << QLatin1String(row.key);
        const QString near = closestMatch(key, keys);
        return QStringLiteral("unknown policy key '%1'%2")
            .arg(key, near.isEmpty() ? QString() : " (did you mean '" + near + "'?)");
    }
    DaemonConfig c;
    c.policy = o.values;
    if (auto err = applySetting(*s, c, value))
        return err;
    o.values = c.policy;
    if (!o.has(s->key))
        o.keys << QLatin1String(s->key);
    return std::nullopt;
}

PolicyParse parsePolicyXml(const QString& xml)
{
    PolicyParse out;
    QXmlStreamReader r(xml);
    while (!r.atEnd() && !r.isStartElement())
        r.readNext();
    if (r.hasError() || !r.isStartElement()) {
        out.errors << QStringLiteral("policy metadata is not XML (%1)").arg(r.errorString());
        return out;
    }
    if (r.name() != QLatin1String("policy")) {
        out.errors << QStringLiteral("policy metadata element is <%1>, expected <policy>")
                          .arg(r.name().toString());
        return out;
    }
    for (const QXmlStreamAttribute& a : r.attributes()) {
        if (!a.prefix().isEmpty() && a.prefix() == QLatin1String("xmlns"))
            continue;
        if (auto err = setPolicyKey(out.policy, a.name().toString(), a.value().toString()))
            out.errors << *err;
    }
    // The element must be well-formed to the end.
    while (!r.atEnd())
        r.readNext();
    if (r.hasError())
        out.errors << QStringLiteral("policy metadata is malformed (%1)").arg(r.errorString());
    if (!out.errors.isEmpty())
        out.policy = {};
    return out;
}

QString policyToXml(const PolicyOverride& o)
{
    QString xml;
    QXmlStreamWriter w(&xml);
    w.writeStartElement("policy");
    DaemonConfig c;
    c.policy = o.values;
    for (const Setting& s : settings())
        if (s.perDomain && o.has(s.key))
            w.writeAttribute(QLatin1String(s.key), s.get(c));
    if (!o.resync.isEmpty())
        w.writeAttribute("resync", o.resync);
    w.writeEndElement();
    return xml;
}

} // namespace clocksync
