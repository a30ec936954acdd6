// SPDX-License-Identifier: Apache-2.0
// RAII owners for libvirt handles and strings, and libvirt errors as qga::Error.
#pragma once

#include "expected.h"

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace qga {

struct ConnectDeleter
{
    void operator()(virConnectPtr c) const noexcept { virConnectClose(c); }
};
struct DomainDeleter
{
    void operator()(virDomainPtr d) const noexcept { virDomainFree(d); }
};
struct FreeDeleter
{
    void operator()(void* p) const noexcept { std::free(p); }
};

using ConnectHandle = std::unique_ptr<virConnect, ConnectDeleter>;
using DomainHandle = std::unique_ptr<virDomain, DomainDeleter>;
using CString = std::unique_ptr<char, FreeDeleter>;

// Shared ownership of a domain across threads (virDomainRef per copy).
inline std::shared_ptr<virDomain> shareDomain(virDomainPtr dom)
{
    virDomainRef(dom);
    return std::shared_ptr<virDomain>(dom, [](virDomainPtr d) { virDomainFree(d); });
}

// The calling thread's last libvirt error, mapped to an ErrorKind, with
// libvirt's own text preserved.
Error lastLibvirtError(const char* what);
// The kind of a libvirt error (virErrorNumber code and message): what the
// engine and the tracker branch on.
ErrorKind libvirtErrorKind(int code, const std::string& message);

} // namespace qga
