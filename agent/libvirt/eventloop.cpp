// SPDX-License-Identifier: Apache-2.0
// libvirt event loop thread.
#include "eventloop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <QByteArray>
#include <QtGlobal>

#include <cstdlib>
#include <mutex>
#include <thread>

namespace clocksync {

void prepareQtForLibvirtEventLoop()
{
    // Keep Qt off GLib's default main context, which libvirt's loop owns.
    qputenv("QT_NO_GLIB", QByteArrayLiteral("1"));
}

bool startLibvirtEventLoop()
{
    static std::once_flag once;
    static bool ok = false;
    std::call_once(once, [] {
        if (virInitialize() < 0)
            return;
        // libvirt prints every error to stderr by default; we report errors
        // ourselves, once, with context.
        virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
        if (virEventRegisterDefaultImpl() < 0)
            return;
        std::thread([] {
            for (;;)
                virEventRunDefaultImpl();
        }).detach();
        ok = true;
    });
    return ok;
}

} // namespace clocksync
