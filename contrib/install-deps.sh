#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs, from Debian's archive, what one purpose of virt-clocksync needs:
#   demo  the lab demo (contrib/demo.sh): the build tools and libraries, QEMU,
#         libvirt's daemon binaries (the lab runs its own session libvirtd; no
#         system service is installed), the busybox guest's parts, python3
#         for the ruler.
#   all   (the default) everything the test command (contrib/run-tests.sh) and
#         the benchmarks use besides: the Debian guest flavor, packaging and
#         lint tools, the system libvirt (system-mode cases), sanitizer
#         runtimes, a private D-Bus for the watcher tests, gnuplot, and
#         promtool -- extracted from Debian's prometheus package into
#         /var/cache/virt-clocksync/promtool, never installed: the package
#         would start a Prometheus server listening on :9090.
# Idempotent: packages already present are left alone.
set -euo pipefail

purpose=${1:-all}
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root (apt-get)" >&2
    exit 1
fi

demo=(
    # build
    build-essential cmake ninja-build pkg-config
    libvirt-dev qt6-base-dev nlohmann-json3-dev libsystemd-dev
    # the lab: its own session libvirtd and QEMU (TCG), the busybox guest
    # (qemu-ga taken from the host's package), the lab user, the ruler
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    qemu-system-x86 qemu-utils qemu-guest-agent busybox-static cpio kmod
    passwd procps util-linux python3 bc
)
all=(
    "${demo[@]}" git
    # developer tools: format (C++, Python), fuzzing and sanitizer runtimes
    clang clang-format libclang-rt-14-dev black
    # system-mode cases and the installed package's check (qemu:///system)
    libvirt-daemon-system
    # tst_daemon's private bus, where it plays logind
    dbus-daemon
    # the Debian 12 guest flavor (contrib/lab/build-debian-guest.sh); the
    # Debian 13 lane's root, booted with systemd as PID 1 (contrib/ci/trixie.sh)
    mmdebstrap e2fsprogs systemd-container
    # benchmarks
    gnuplot-nox python3-libvirt
    # distribution checks (contrib/ci/packaging.sh): packages, lint, the unit
    debhelper devscripts lintian rpm rpmlint systemd
)
case "$purpose" in
    demo) packages=("${demo[@]}") ;;
    all) packages=("${all[@]}") ;;
    *) echo "usage: install-deps.sh [demo|all]" >&2; exit 2 ;;
esac

export DEBIAN_FRONTEND=noninteractive
updated=""
update() { [ -n "$updated" ] || { apt-get update -q; updated=1; }; }

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages for '$purpose' present"
else
    echo "install-deps: installing ${missing[*]}"
    update
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# promtool (the alert rules' tests) without the server: the binary from the
# package's files. contrib/ci/packaging.sh looks for it here.
promtool=/var/cache/virt-clocksync/promtool/usr/bin/promtool
if [ "$purpose" = all ] && [ ! -x "$promtool" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && { apt-get download -q prometheus 2>/dev/null || { update && apt-get download -q prometheus; }; })
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    install -D -m 0755 "$tmp/root/usr/bin/promtool" "$promtool"
    echo "install-deps: promtool in ${promtool%/usr/bin/promtool} (the prometheus package is not installed)"
fi
