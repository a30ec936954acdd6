// SPDX-License-Identifier: Apache-2.0
// The daemon's view of the hypervisor: a connection that comes and goes,
// domain events already mapped to core terms, the running domains, and the
// per-domain backend the scheduler's workers use. agent/libvirt implements it
// over libvirt (LibvirtHypervisor); tests use a fake (tests/common/fakehypervisor.h),
// so the daemon's wiring is tested without libvirt.
#pragma once

#include "domainbackend.h"
#include "domainevent.h"

#include <QObject>
#include <QString>

#include "expected.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace clocksync {

using DomainList = std::vector<std::pair<std::string, std::string>>; // (uuid, name)

class Hypervisor : public QObject
{
    Q_OBJECT
public:
    using QObject::QObject;

    // Starts connecting (asynchronously), and reconnecting until stop().
    virtual void start() = 0;
    // Stops taking events and waits for its background work.
    virtual void stop() = 0;
    virtual bool isConnected() const = 0;
    virtual int reconnects() const = 0;
    virtual QString uri() const = 0;
    // The running domains, listed off the main thread; fn runs on the main
    // thread later, and not at all while disconnected or after stop(). A
    // listing that failed is an error, never "no domains".
    virtual void listRunning(std::function<void(qga::Expected<DomainList>)> fn) = 0;
    // Every domain libvirt has, running or only defined; as listRunning.
    virtual void listKnown(std::function<void(qga::Expected<DomainList>)> fn) = 0;
    // Thread-safe: called from the scheduler's workers.
    virtual DomainBackend& backend() = 0;

signals:
    void connected();
    void disconnected(const QString& reason);
    void domainEvent(const QString& uuid, const QString& name,
                     const clocksync::EventAction& action);
};

} // namespace clocksync
