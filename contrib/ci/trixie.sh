#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Today's stack: Debian 13 (trixie: libvirt 11.3, QEMU 10.0, systemd 257,
# GCC 14, Qt 6.8) booted with systemd as PID 1 in a container, where
#  package: the Debian package is built as the README says -- warnings are
#     errors, its unit tests (the simulation included) run in the build --
#     installed, and run by systemd against the system libvirtd as Debian
#     ships it (socket-activated): a guest paused and resumed, read on the
#     ruler; `systemctl reload` with a good and with a broken config; the
#     hardened unit's `systemd-analyze security` recorded; stop, purge;
#  e2e: a core set of e2e cases runs against trixie's libvirtd and QEMU with
#     the package's binaries, the lab guest carrying trixie's qemu-ga 10.0
#     (which sets the clock, then runs hwclock);
#  build (not by default): the Debug build and ctest -L unit, for a developer.
# The root is built fresh (mmdebstrap, ~2 min) in a temporary directory and
# removed at the end; the container is stopped whatever happens.
#
# Usage (as root on Debian 12): bash contrib/ci/trixie.sh [STAGE...]
#   stages: package e2e build (default: package e2e)
# TRIXIE_KEEP=DIR: build the root in DIR and keep it (for a developer's
# repeated runs; not what CI does).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
say() { echo "== trixie: $*"; }
fail() { echo "trixie: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root"
command -v mmdebstrap >/dev/null && command -v systemd-nspawn >/dev/null ||
    fail "needs mmdebstrap and systemd-container (contrib/install-deps.sh all)"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(package e2e)

# What the root carries: systemd as PID 1 and the system libvirt as Debian
# 13 ships it; the build (the README's build dependencies) and the package
# tools; the lab (its guest from trixie's kernel, busybox and qemu-ga).
pkgs=(
    systemd systemd-sysv dbus libvirt-daemon-system qemu-system-x86 qemu-utils
    build-essential cmake ninja-build pkg-config libvirt-dev qt6-base-dev
    nlohmann-json3-dev libsystemd-dev debhelper devscripts git
    qemu-guest-agent busybox-static cpio kmod xz-utils zstd passwd procps util-linux
    python3 bc
)

if [ -n "${TRIXIE_KEEP:-}" ]; then
    work=$TRIXIE_KEEP
    mkdir -p "$work"
else
    work=$(mktemp -d /var/tmp/clocksync-trixie.XXXXXX)
fi
root=$work/root
nspawn=""
leader=""
stop_container() {
    [ -n "$nspawn" ] || return 0
    # SIGTERM: nspawn asks the container's systemd to power off; if it does
    # not, SIGKILL to the container's PID 1 ends every process in it.
    kill "$nspawn" 2>/dev/null || true
    if ! timeout 60 tail --pid="$nspawn" -f /dev/null; then
        [ -z "$leader" ] || kill -KILL "$leader" 2>/dev/null || true
        kill -KILL "$nspawn" 2>/dev/null || true
        timeout 30 tail --pid="$nspawn" -f /dev/null || true
    fi
    nspawn=""
}
cleanup() {
    stop_container
    [ -n "${TRIXIE_KEEP:-}" ] || rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if [ ! -x "$root/usr/bin/virsh" ]; then
    say "root: mmdebstrap trixie (${#pkgs[@]} packages and their dependencies)"
    rm -rf "$root"
    started=$SECONDS
    mmdebstrap --variant=minbase --include="$(IFS=,; echo "${pkgs[*]}")" trixie "$root" \
        >"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log"; fail "mmdebstrap failed"; }
    echo "root built in $((SECONDS - started)) s: $(du -sh "$root" | cut -f1)"
    # libvirt's cgroup v1 controllers are read-only in the container.
    echo 'cgroup_controllers = [ ]' >>"$root/etc/libvirt/qemu.conf"
fi
# A git clone, as the README's install starts from, with the tracked files
# as they are here (uncommitted edits included); kept for an e2e stage
# alone (a developer's TRIXIE_KEEP root, built before).
if [[ " ${stages[*]} " == *" package "* || " ${stages[*]} " == *" build "* || ! -d "$root/src" ]]; then
    rm -rf "$root/src"
    git clone -q --no-local --no-hardlinks "$repo" "$root/src"
    git ls-files -z | xargs -0 cp --parents -t "$root/src"
fi

say "boot: systemd-nspawn, systemd $(chroot "$root" systemctl --version | head -1 | cut -d' ' -f2) as PID 1"
systemd-nspawn --register=no --keep-unit --console=read-only -D "$root" -b >"$work/console.log" 2>&1 &
nspawn=$!
deadline=$((SECONDS + 60))
until [ -n "$leader" ]; do
    # The container's PID 1: nspawn's child running systemd.
    leader=$(pgrep -P "$nspawn" -x systemd || true)
    [ $SECONDS -lt $deadline ] || { cat "$work/console.log"; fail "the container did not start"; }
    kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log"; fail "systemd-nspawn exited"; }
    [ -n "$leader" ] || sleep 0.2 # polling for the process, bounded by the deadline
done
# inside CMD...: runs CMD in the container (all its namespaces), as root,
# with a clean environment; CI=true so that nothing is skipped silently.
inside() {
    nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb CI=true "$@"
}
# systemctl needs the manager's socket, which appears a moment after PID 1.
until inside test -S /run/systemd/private; do
    [ $SECONDS -lt $deadline ] || { cat "$work/console.log"; fail "systemd in the container never listened"; }
    sleep 0.2 # polling for the socket, bounded by the deadline
done
state=$(inside timeout 120 systemctl is-system-running --wait || true)
echo "systemctl is-system-running: $state"
if [ "$state" != running ]; then
    inside systemctl --failed --no-pager || true
    fail "the container's systemd is '$state', not running"
fi
inside virsh -c qemu:///system version
# The lab's guest comes from trixie's kernel package: the archive's lists
# (mmdebstrap leaves none). Retried: the first try, moments after boot,
# has failed here once.
for try in 1 2 3; do
    if inside apt-get update -q >"$work/apt-update.log" 2>&1; then
        break
    fi
    [ "$try" -lt 3 ] || { cat "$work/apt-update.log"; fail "apt-get update failed in the container"; }
    sleep 5 # a retry after a failed download, not a synchronisation
done

for stage in "${stages[@]}"; do
    case "$stage" in
    build)
        say "build (default preset: Debug, -Werror) and the unit tests, on trixie's compilers and libraries"
        started=$SECONDS
        inside bash -c 'cd /src && cmake --preset default >/dev/null && cmake --build --preset default -j "$(nproc)" >/src/build.log 2>&1 ||
            { tail -40 /src/build.log; exit 1; }'
        inside bash -c 'set -o pipefail; cd /src && ctest --preset default -L unit -j "$(nproc)" --output-on-failure | tail -25'
        echo "build and unit tests: $((SECONDS - started)) s"
        ;;
    e2e)
        say "e2e on libvirt $(inside virsh --version) and QEMU $(inside qemu-system-x86_64 --version | head -1 | awk '{print $4}')"
        started=$SECONDS
        # The package's binaries (the package stage built them on trixie),
        # else a developer's build stage's.
        bin=/src/build/default/agent
        if [ -x "$root/src/build/deb-bin/virt-clocksyncd" ]; then
            bin=/src/build/deb-bin
        fi
        [ -x "$root$bin/virt-clocksyncd" ] || fail "the e2e stage needs the package or build stage first"
        for c in ${TRIXIE_CASES:-repeat_suspend_resume save_restore agent_stall policy_typo variable_clock migrate_precopy}; do
            inside bash -c "cd /src && E2E_RESULTS=/src/e2e-results.txt CLOCKSYNC_BIN=$bin \
                bash tests/e2e/cases.sh $c" >"$work/e2e-$c.log" 2>&1 ||
                { tail -60 "$work/e2e-$c.log"; fail "e2e case $c failed on trixie"; }
            echo "   $c: passed"
        done
        sed 's/^/   /' "$root/src/e2e-results.txt"
        echo "e2e: $((SECONDS - started)) s"
        ;;
    package)
        say "the Debian package, under systemd as PID 1"
        started=$SECONDS
        inside bash -c "cd /src && PACKAGING_LANE=systemd bash contrib/ci/packaging.sh"
        # The binaries, for the e2e stage (the package itself is purged).
        mkdir -p "$root/src/build/deb-bin"
        dpkg-deb -x "$root"/src/build/deb/virt-clocksync_*_amd64.deb "$work/deb"
        cp "$work/deb/usr/sbin/virt-clocksyncd" "$work/deb/usr/bin/virt-clocksync" "$root/src/build/deb-bin/"
        echo "package: $((SECONDS - started)) s"
        ;;
    *) fail "unknown stage '$stage' (package, e2e, build)" ;;
    esac
done
stop_container
say "ok"
