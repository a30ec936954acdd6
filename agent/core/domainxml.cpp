// SPDX-License-Identifier: Apache-2.0
#include "domainxml.h"

#include <QXmlStreamReader>

namespace clocksync {

DomainFacts parseDomainFacts(const QString& xml)
{
    DomainFacts f;
    bool qemu = false;
    bool agent = false;
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
            qemu =
                a.value("type") == QLatin1String("qemu") || a.value("type") == QLatin1String("kvm");
        } else if (path == QStringList{"domain", "clock"}) {
            const QString offset = a.value("offset").toString();
            const QString basis = a.value("basis").toString();
            if (offset == QLatin1String("variable") && (basis.isEmpty() || basis == "utc")) {
                bool ok = false;
                const qlonglong s = a.value("adjustment").toLongLong(&ok);
                f.clock = DomainFacts::Clock::Variable;
                f.adjustmentNs = ok ? s * 1'000'000'000LL : 0;
            } else if (offset == QLatin1String("absolute")) {
                f.clock = DomainFacts::Clock::Absolute;
            }
        } else if (path == QStringList{"domain", "devices", "channel", "target"} &&
                   a.value("name") == QLatin1String("org.qemu.guest_agent.0")) {
            agent = true;
            if (a.hasAttribute("state"))
                f.agentConnected = a.value("state") == QLatin1String("connected");
        }
    }
    if (r.hasError())
        return DomainFacts{};
    // The channel is how QEMU reaches its guest agent; other drivers (libvirt's
    // test driver, say) answer the time calls without one.
    f.agentChannel = agent || !qemu;
    return f;
}

} // namespace clocksync
