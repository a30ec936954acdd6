// SPDX-License-Identifier: Apache-2.0
// virt-clocksync: the operator's CLI. Thin main; see cli.cpp.
#include "cli.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <QCoreApplication>

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    virInitialize();
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {}); // we print errors ourselves
    QStringList args = app.arguments();
    args.removeFirst();
    return clocksync::cli::run(args);
}
