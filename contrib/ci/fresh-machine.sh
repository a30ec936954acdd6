#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs CI as on a brand-new machine: removes every trace of earlier runs that
# the project itself creates, clones the repository (HEAD of this checkout)
# into a 0700 temporary directory and runs .ci/run there, as CI does.
#
#   removed: the lab user and its home (/var/lib/clocklab), every process it
#   runs (session libvirtd, QEMU), the lab's runtime dir (/run/clocklab-runtime),
#   guests and images (/tmp/clocklab), the guest image cache
#   (/var/cache/virt-clocksync-lab), promtool (/var/cache/virt-clocksync),
#   leftovers of e2e, demo, bench and
#   mutation runs in /tmp; the system-mode lab (its guests, the libvirtd and
#   virtlogd it started, /var/lib/clocklab-system) and an installed
#   virt-clocksync package. Other Debian packages stay (.ci/run installs what
#   is missing).
#
# Usage (as root): bash contrib/ci/fresh-machine.sh [--keep-cache]
#   --keep-cache  keep the guest image cache (saves ~1 min; not a fresh machine)
# Prints the wall time and ctest's counts at the end; exits with .ci/run's status.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: run as root" >&2; exit 2; }
src="$(cd "$(dirname "$0")/../.." && pwd)"
keep_cache=0
[ "${1:-}" != "--keep-cache" ] || keep_cache=1

echo "== removing every trace of earlier runs"
if id clocklab >/dev/null 2>&1; then
    pkill -KILL -u clocklab 2>/dev/null || true
    for _ in $(seq 50); do pgrep -u clocklab >/dev/null || break; sleep 0.1; done
    userdel -r clocklab 2>/dev/null || userdel clocklab
fi
getent group clocklab >/dev/null && groupdel clocklab || true
# The system-mode lab: its guests, the libvirtd and virtlogd it started by
# hand, its files; and the package the distribution check installs.
if [ -S /run/libvirt/libvirt-sock ]; then
    for name in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^clocklab-' || true); do
        virsh -q -c qemu:///system destroy "$name" >/dev/null 2>&1 || true
        virsh -q -c qemu:///system undefine --managed-save "$name" >/dev/null 2>&1 || true
    done
fi
for pidfile in /run/clocklab-libvirtd.pid /run/clocklab-virtlogd.pid; do
    [ ! -f "$pidfile" ] || kill "$(cat "$pidfile")" 2>/dev/null || true
done
rm -f /run/clocklab-libvirtd.pid /run/clocklab-virtlogd.pid /run/clocklab-libvirtd.conf
rm -rf /var/lib/clocklab-system
! dpkg -s virt-clocksync >/dev/null 2>&1 || dpkg --purge virt-clocksync >/dev/null
rm -rf /var/lib/clocklab /run/clocklab-runtime /tmp/clocklab /tmp/clocksync-e2e.* \
    /tmp/virt-clocksync-demo.* /tmp/virt-clocksyncd.*.log /tmp/clocksync-mutants.* \
    /tmp/clocksync-fresh-e2e-results.txt
[ "$keep_cache" -eq 1 ] || rm -rf /var/cache/virt-clocksync-lab
rm -rf /var/cache/virt-clocksync # promtool, extracted by install-deps.sh
# An interrupted Debian guest build: mmdebstrap may have left its /proc and
# /dev mounts in the tree (a /dev there is the host's own): unmount first,
# and never remove across a file system boundary.
findmnt -rn -o TARGET | grep '^/var/tmp/clocksync-debian\.' | sort -r | xargs -r umount -l || true
rm -rf --one-file-system /var/tmp/clocksync-debian.*

work=$(mktemp -d /tmp/clocksync-fresh.XXXXXX) # mktemp makes it 0700
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/repo"
echo "== cloned $(git -C "$work/repo" log -1 --format='%h %s') into a 0700 directory"
start=$(date +%s)
rc=0
(cd "$work/repo" && CI=true bash .ci/run) 2>&1 | tee "$work/ci.log" || rc=$?
echo
echo "== fresh-machine: .ci/run exit $rc after $(( $(date +%s) - start )) s"
# Every ruler reading of the e2e run (one RESULT line each), kept: the clone goes.
if cp "$work/repo/build/default/e2e-results.txt" /tmp/clocksync-fresh-e2e-results.txt 2>/dev/null; then
    echo "== e2e readings: /tmp/clocksync-fresh-e2e-results.txt"
fi
grep -E "tests passed|Total Test time|\*\*\*(Failed|Skipped)|Not Run|Passed +[0-9.]+ sec" "$work/ci.log" |
    grep -E "tests passed|Total Test time|Failed|Skipped|Not Run" || true
exit "$rc"
