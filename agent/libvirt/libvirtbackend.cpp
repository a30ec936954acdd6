// SPDX-License-Identifier: Apache-2.0
// LibvirtBackend.
#include "libvirtbackend.h"

#include "libvirtagent.h"

#include <libvirt/virterror.h>

#include <QDateTime>

namespace clocksync {

using qga::ErrorKind;

LibvirtBackend::LibvirtBackend(ConnectionSource source, Transport transport,
                               int agentTimeoutSeconds, const qga::Clock& clock)
    : m_source(std::move(source)), m_transport(transport), m_agentTimeout(agentTimeoutSeconds),
      m_clock(clock)
{
}

qga::Expected<std::shared_ptr<virDomain>> LibvirtBackend::lookup(const std::string& uuid)
{
    std::shared_ptr<virConnect> conn = m_source();
    if (!conn)
        return qga::makeError(ErrorKind::Transport, "not connected to libvirt");
    virDomainPtr dom = virDomainLookupByUUIDString(conn.get(), uuid.c_str());
    if (!dom)
        return qga::lastLibvirtError("virDomainLookupByUUIDString");
    // The domain keeps its connection alive (libvirt refcounts it).
    return std::shared_ptr<virDomain>(dom, [](virDomainPtr d) { virDomainFree(d); });
}

namespace {

// Our metadata element as libvirt formats it; "" when there is none.
qga::Expected<QString> policyXml(virDomainPtr dom, unsigned flags)
{
    qga::CString xml(virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri, flags));
    if (xml)
        return QString::fromUtf8(xml.get());
    virErrorPtr e = virGetLastError();
    if (e && e->code == VIR_ERR_NO_DOMAIN_METADATA)
        return QString();
    return qga::lastLibvirtError("virDomainGetMetadata");
}

} // namespace

qga::Expected<PolicyXml> LibvirtBackend::readPolicyXml(virDomainPtr dom)
{
    const qga::Expected<QString> live = policyXml(dom, VIR_DOMAIN_AFFECT_CURRENT);
    if (!live)
        return live.error();
    PolicyXml x{*live, std::nullopt};
    if (virDomainIsActive(dom) == 1 && virDomainIsPersistent(dom) == 1) {
        // Unreadable: nothing is known to be pending (the live policy rules).
        if (const qga::Expected<QString> defined = policyXml(dom, VIR_DOMAIN_AFFECT_CONFIG))
            x.defined = *defined;
    }
    return x;
}

qga::Expected<PolicyParse> LibvirtBackend::readPolicy(virDomainPtr dom)
{
    const qga::Expected<PolicyXml> x = readPolicyXml(dom);
    if (!x)
        return x.error();
    return x->parse();
}

qga::Expected<void> LibvirtBackend::writePolicy(virDomainPtr dom, const PolicyOverride& o)
{
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    int persistent = virDomainIsPersistent(dom);
    if (virDomainIsActive(dom) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (persistent != 1)
        flags &= ~unsigned(VIR_DOMAIN_AFFECT_CONFIG);
    const QByteArray xml = policyToXml(o).toUtf8();
    const char* value = o.isEmpty() ? nullptr : xml.constData(); // empty: remove
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, value, kMetadataKey, kMetadataUri,
                             flags) < 0)
        return qga::lastLibvirtError("virDomainSetMetadata");
    return {};
}

qga::Expected<PolicyParse> LibvirtBackend::readPolicy(const std::string& uuid)
{
    auto dom = lookup(uuid);
    if (!dom)
        return dom.error();
    const qga::Expected<PolicyXml> x = readPolicyXml(dom->get());
    if (!x)
        return x.error();
    return applyEditedDefinition(uuid, dom->get(), *x);
}

// A persistent policy edited since it was last seen is made live
// (docs/design.md §9); a failed write leaves it pending, and tried again.
PolicyParse LibvirtBackend::applyEditedDefinition(const std::string& uuid, virDomainPtr dom,
                                                  const PolicyXml& x)
{
    const std::optional<QString> edit = m_defined.editToApply(uuid, x);
    if (!edit)
        return x.parse();
    const QByteArray xml = edit->toUtf8();
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                             edit->isEmpty() ? nullptr : xml.constData(), kMetadataKey,
                             kMetadataUri, VIR_DOMAIN_AFFECT_LIVE) < 0)
        return x.parse(); // it stays pending, as status and policy say
    m_defined.seen(uuid, *edit);
    return parsedPolicyXml(*edit);
}

qga::Expected<bool> LibvirtBackend::isRunning(const std::string& uuid)
{
    auto dom = lookup(uuid);
    if (!dom)
        return dom.error().kind == ErrorKind::NotRunning ? qga::Expected<bool>(false) : dom.error();
    int state = 0;
    int reason = 0;
    if (virDomainGetState(dom->get(), &state, &reason, 0) < 0) {
        qga::Error e = qga::lastLibvirtError("virDomainGetState");
        return e.kind == ErrorKind::NotRunning ? qga::Expected<bool>(false) : e;
    }
    return state == VIR_DOMAIN_RUNNING;
}

qga::Expected<DomainFacts> LibvirtBackend::facts(const std::string& uuid)
{
    auto dom = lookup(uuid);
    if (!dom)
        return dom.error();
    return facts(dom->get());
}

qga::Expected<DomainFacts> LibvirtBackend::facts(virDomainPtr dom)
{
    const int64_t utcOffset = QDateTime::currentDateTime().offsetFromUtc();
    qga::CString xml(virDomainGetXMLDesc(dom, 0)); // live: the current adjustment
    if (!xml)
        return qga::lastLibvirtError("virDomainGetXMLDesc");
    // The configured adjustment (docs/design.md §5); without one (a transient
    // domain's, an unreadable one) the live value is all there is -- and the
    // tracker's memory of what it was aimed at stands in. For a transient
    // domain libvirt answers INACTIVE with the live XML: not a configuration.
    auto inactive = [dom]() -> std::optional<QString> {
        if (virDomainIsPersistent(dom) != 1)
            return std::nullopt;
        qga::CString x(virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE));
        return x ? std::optional<QString>(QString::fromUtf8(x.get())) : std::nullopt;
    };
    return composeFacts(QString::fromUtf8(xml.get()), inactive, utcOffset);
}

qga::Expected<std::unique_ptr<qga::GuestAgent>> LibvirtBackend::openAgent(const std::string& uuid)
{
    auto dom = lookup(uuid);
    if (!dom)
        return dom.error();
    std::unique_ptr<qga::GuestAgent> agent;
    if (m_transport == Transport::LibvirtRaw)
        agent = std::make_unique<qga::RawLibvirtAgent>(*dom, m_clock, m_agentTimeout);
    else
        agent = std::make_unique<qga::LibvirtAgent>(*dom, m_clock, m_agentTimeout);
    return agent;
}

} // namespace clocksync
