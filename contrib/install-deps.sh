#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build, test, lab and benchmark dependency of virt-clocksync from
# Debian's archive. Idempotent: packages already present are left alone.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root (apt-get)" >&2
    exit 1
fi

packages=(
    # build
    build-essential cmake ninja-build pkg-config git
    libvirt-dev qt6-base-dev nlohmann-json3-dev libsystemd-dev
    # developer tools: format, fuzzing and sanitizer runtimes
    clang clang-format libclang-rt-14-dev
    # integration tests (dbus-daemon: a private bus where tst_daemon plays logind) and the lab
    dbus-daemon
    qemu-guest-agent libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    libvirt-daemon-system
    qemu-system-x86 qemu-utils busybox-static cpio kmod passwd procps util-linux
    mmdebstrap e2fsprogs # the Debian 12 guest flavor (contrib/lab/build-debian-guest.sh)
    # benchmarks
    gnuplot-nox python3 python3-libvirt bc
    # distribution checks (contrib/ci/packaging.sh): packages, lint, unit, alert rules
    debhelper devscripts lintian rpm rpmlint systemd prometheus
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
