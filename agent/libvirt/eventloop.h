// SPDX-License-Identifier: Apache-2.0
// libvirt's event loop, on its own thread. This is the only file that knows
// how libvirt events are pumped; everything else receives Qt signals.
//
// Why not a QSocketNotifier bridge: libvirt calls the add/update/remove hooks
// from whichever thread makes an RPC, and Qt notifiers must be touched from
// their own thread, so a bridge needs cross-thread marshalling with deferred
// frees. libvirt's default implementation already does this correctly; it
// runs on GLib's default main context, so Qt must not use GLib's dispatcher
// (main() sets QT_NO_GLIB before QCoreApplication is created).
#pragma once

namespace clocksync {

// Registers libvirt's default event implementation and starts a thread that
// runs it for the rest of the process. Must run before any virConnectOpen.
// Safe to call more than once.
bool startLibvirtEventLoop();

// Call at the top of main(), before QCoreApplication exists.
void prepareQtForLibvirtEventLoop();

} // namespace clocksync
