#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The lab demo: one guest, paused for 5 s and resumed, three ways:
#   1. nothing done (what a plain libvirt host leaves),
#   2. `virsh domtime --now` and `virsh domtime --sync` (what operators do today),
#   3. virt-clocksyncd running.
# Every offset is measured independently of the path under test and of the
# daemon's code: contrib/ruler/ruler.py reads the guest's read-only reference
# agent on its own virtio port, straight from the host socket (min-RTT of 30
# samples).
# Usage (as root on Debian 12): bash contrib/demo.sh
# (DEMO_BIN=DIR: use the binaries in DIR instead of installing and building.)
# However it ends (done, failed, the daemon died, Ctrl-C) it leaves no guest,
# no lab process and no temporary file behind (tests/e2e: case demo_cleanup).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ -z "${DEMO_BIN:-}" ]; then
    bash contrib/install-deps.sh demo >/dev/null
    echo "== building (release)"
    cmake --preset release >/dev/null
    cmake --build --preset release -j "$(nproc)" >/dev/null
fi
src="${DEMO_BIN:-build/release/agent}"
lab="bash $repo/contrib/lab/lab.sh"
ruler="python3 $repo/contrib/ruler/ruler.py"

daemon_pid="" bin="" log=""
cleanup() {
    local rc=$?
    set +e
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    $lab down >/dev/null 2>&1
    rm -rf "$log" "$bin"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The lab user runs the daemon: give it copies it can reach wherever the
# checkout lives (e.g. under /root).
bin=$(mktemp -d /tmp/virt-clocksync-demo.XXXXXX)
cp "$src/virt-clocksyncd" "$src/virt-clocksync" "$bin/"
chmod 0755 "$bin" "$bin"/*
log=$(mktemp /tmp/virt-clocksyncd.XXXXXX.log)
chmod 0644 "$log"

$lab down
echo "== starting a lab guest (TCG, tiny kernel + initramfs with qemu-ga)"
t0=$(date +%s.%N)
guest=$($lab up -n 1)
printf "   %s: agent up after %.1f s\n" "$guest" "$(echo "$(date +%s.%N) - $t0" | bc)"
ref=$($lab ref "$guest")

# Independent ruler: offset in microseconds, via the reference agent socket.
ruler_us() {
    $ruler read "$ref" --samples 30 |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["offset_ns"] / 1000))'
}
# wait_daemon PATTERN: the daemon's first log line matching PATTERN, waiting
# up to 60 s; fails at once if the daemon exits (tail follows its pid).
wait_daemon() {
    timeout 60 grep -m1 -E "$1" <(tail --pid="$daemon_pid" -n +1 -f "$log") ||
        { echo "demo: the daemon did not log '$1' (log follows)" >&2; cat "$log" >&2; exit 1; }
}
pause_5s() {
    $lab virsh suspend "$guest" >/dev/null
    sleep 5
    $lab virsh resume "$guest" >/dev/null
}
human() { python3 -c 'import sys; v=float(sys.argv[1]); a=abs(v)
print(("%+.3f s" % (v/1e6)) if a >= 1e6 else ("%+.3f ms" % (v/1e3)) if a >= 1e3 else ("%+.1f us" % v))' "$1"; }

echo "== 1. pause 5 s, resume, do nothing"
$lab run "$bin/virt-clocksync" sync "$guest" >/dev/null || true   # start from a synced guest
pause_5s
nothing=$(ruler_us)
echo "   the guest is now $(human "$nothing") off"

echo "== 2. what operators do today"
$lab virsh domtime "$guest" --now >/dev/null
now=$(ruler_us)
echo "   after 'virsh domtime --now' (whole seconds):   $(human "$now")"
pause_5s
$lab virsh domtime "$guest" --sync >/dev/null
sync=$(ruler_us)
echo "   after pause + 'virsh domtime --sync' (RTC):     $(human "$sync")"

echo "== 3. virt-clocksyncd"
$lab run "$bin/virt-clocksyncd" --uri qemu:///session > "$log" 2>&1 &
daemon_pid=$! # the daemon's own pid: lab.sh run execs it
up=$(wait_daemon "reconcile:")
echo "   daemon up: ${up#clocksync.sync: }"
pause_5s
daemon_line=$(wait_daemon "resumed:")
daemon_line=${daemon_line#clocksync.sync: }
after=$(ruler_us)
echo "   daemon: $daemon_line"
echo "   independent measurement right after:          $(human "$after")"

echo
echo "== summary: guest offset after a 5 s pause (independent ruler on the reference agent, min-RTT of 30 samples)"
printf "   %-34s %14s\n" "method" "offset"
printf "   %-34s %14s\n" "nothing" "$(human "$nothing")"
printf "   %-34s %14s\n" "virsh domtime --now" "$(human "$now")"
printf "   %-34s %14s\n" "virsh domtime --sync" "$(human "$sync")"
printf "   %-34s %14s\n" "virt-clocksyncd" "$(human "$after")"
python3 -c 'import sys; n,d=abs(float(sys.argv[1])),max(abs(float(sys.argv[2])),1.0)
print("   virt-clocksyncd left the guest %.0fx closer than virsh domtime --now" % (n/d))' "$now" "$after"
