// SPDX-License-Identifier: Apache-2.0
#include "definedpolicy.h"

namespace clocksync {

PolicyParse parsedPolicyXml(const QString& xml)
{
    return xml.isEmpty() ? PolicyParse{} : parsePolicyXml(xml);
}

PolicyParse PolicyXml::parse() const
{
    PolicyParse p = parsedPolicyXml(live);
    if (defined && *defined != live)
        p.nextBoot = *defined;
    return p;
}

std::optional<QString> DefinedPolicyWatch::editToApply(const std::string& uuid, const PolicyXml& x)
{
    if (!x.defined)
        return std::nullopt;
    std::lock_guard<std::mutex> lock(m_lock);
    const auto seen = m_seen.find(uuid);
    const bool edited = seen != m_seen.end() && seen->second != *x.defined;
    if (!edited || *x.defined == x.live) {
        m_seen[uuid] = *x.defined;
        return std::nullopt;
    }
    return *x.defined;
}

void DefinedPolicyWatch::seen(const std::string& uuid, const QString& defined)
{
    std::lock_guard<std::mutex> lock(m_lock);
    m_seen[uuid] = defined;
}

void DefinedPolicyWatch::forget(const std::string& uuid)
{
    std::lock_guard<std::mutex> lock(m_lock);
    m_seen.erase(uuid);
}

} // namespace clocksync
