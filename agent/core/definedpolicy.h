// SPDX-License-Identifier: Apache-2.0
// Which policy a running domain's job uses when its live metadata and its
// persistent definition differ (docs/design.md §9). virt-manager's XML editor
// and `virsh define` change only the persistent definition: that edit is made
// live. A difference that was already there (a live-only policy set on
// purpose, a definition from before the daemon started) stays pending until
// the next boot. Decided here, without libvirt, so the simulation runs it.
#pragma once

#include "policy.h"

#include <QString>

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace clocksync {

// Our metadata element, live and (running persistent domains, when readable)
// in the persistent definition; "" where there is none.
struct PolicyXml
{
    QString live;
    std::optional<QString> defined;
    PolicyParse parse() const; // the live policy; nextBoot where they differ
};

PolicyParse parsedPolicyXml(const QString& xml); // "" is an empty override

// Remembers, per domain, the persistent policy last seen. Thread-safe.
class DefinedPolicyWatch
{
public:
    // The persistent policy to copy to the live definition now, if any: it
    // changed since it was last seen. Nothing is recorded until confirmed.
    std::optional<QString> editToApply(const std::string& uuid, const PolicyXml& x);
    // The persistent policy as it now stands has been seen (and, if it was
    // an edit, applied live): it is not applied again.
    void seen(const std::string& uuid, const QString& defined);
    void forget(const std::string& uuid);

private:
    std::mutex m_lock;
    std::map<std::string, QString> m_seen; // uuid -> persistent policy XML last seen
};

} // namespace clocksync
