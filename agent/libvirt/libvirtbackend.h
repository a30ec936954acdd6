// SPDX-License-Identifier: Apache-2.0
// DomainBackend over a live libvirt connection: metadata policy, domain
// state and a guest-agent transport per domain.
#pragma once

#include "clock.h"
#include "config.h"
#include "definedpolicy.h"
#include "domainbackend.h"
#include "libvirthandles.h"

#include <functional>
#include <map>
#include <mutex>
#include <optional>

namespace clocksync {

class LibvirtBackend final : public DomainBackend
{
public:
    using ConnectionSource = std::function<std::shared_ptr<virConnect>()>;
    LibvirtBackend(ConnectionSource source, Transport transport, int agentTimeoutSeconds,
                   const qga::Clock& clock);

    qga::Expected<PolicyParse> readPolicy(const std::string& uuid) override;
    qga::Expected<bool> isRunning(const std::string& uuid) override;
    qga::Expected<std::unique_ptr<qga::GuestAgent>> openAgent(const std::string& uuid) override;
    qga::Expected<DomainFacts> facts(const std::string& uuid) override;
    void forget(const std::string& uuid) override { m_defined.forget(uuid); }

    // Shared with the CLI. The live policy, and the persistent one where it
    // differs (PolicyParse::nextBoot).
    static qga::Expected<PolicyParse> readPolicy(virDomainPtr dom);
    static qga::Expected<void> writePolicy(virDomainPtr dom, const PolicyOverride& o);
    // From the live XML, with the host's current UTC offset for basis='localtime'.
    static qga::Expected<DomainFacts> facts(virDomainPtr dom);

private:
    qga::Expected<std::shared_ptr<virDomain>> lookup(const std::string& uuid);
    static qga::Expected<PolicyXml> readPolicyXml(virDomainPtr dom);
    // A persistent policy edited since it was last seen is made the live one.
    PolicyParse applyEditedDefinition(const std::string& uuid, virDomainPtr dom,
                                      const PolicyXml& x);

    DefinedPolicyWatch m_defined;

    ConnectionSource m_source;
    Transport m_transport;
    int m_agentTimeout;
    const qga::Clock& m_clock;
};

} // namespace clocksync
