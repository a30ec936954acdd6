#!/bin/bash
# The lab demo: one guest, paused for 5 s and resumed, three ways:
#   1. nothing done (what a plain libvirt host leaves),
#   2. `virsh domtime --now` and `virsh domtime --sync` (what operators do today),
#   3. virt-clocksyncd running.
# Every offset is measured independently of the path under test: through the
# guest's read-only reference agent on its own virtio port, read directly from
# the host socket (min-RTT of 30 samples).
# Usage (as root on Debian 12): bash contrib/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

bash contrib/install-deps.sh >/dev/null
echo "== building (release)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >/dev/null
lab="bash $repo/contrib/lab/lab.sh"
# The lab user runs the daemon: give it copies it can reach wherever the
# checkout lives (e.g. under /root).
bin=$(mktemp -d /tmp/virt-clocksync-demo.XXXXXX)
cp build/release/agent/virt-clocksyncd build/release/agent/virt-clocksync "$bin/"
chmod 0755 "$bin" "$bin"/*

daemon_pid=""
log=$(mktemp /tmp/virt-clocksyncd.XXXXXX.log)
chmod 0644 "$log"
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    $lab down || true
    rm -rf "$log" "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

$lab down
echo "== starting a lab guest (TCG, tiny kernel + initramfs with qemu-ga)"
t0=$(date +%s.%N)
guest=$($lab up -n 1)
printf "   %s: agent up after %.1f s\n" "$guest" "$(echo "$(date +%s.%N) - $t0" | bc)"
ref=$($lab ref "$guest")

# Independent ruler: offset in microseconds, via the reference agent socket.
ruler_us() {
    $lab run "$bin/virt-clocksync" --json offset "$guest" --socket "$ref" --samples 30 |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["offset_ns"] / 1000))' || true
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
daemon_pid=$!
timeout 60 grep -q -m1 "reconcile:" <(tail -n +1 -f "$log") || { cat "$log"; exit 1; }
echo "   daemon up: $(grep -m1 'reconcile:' "$log" | sed 's/^clocksync.sync: //')"
pause_5s
timeout 60 grep -q -m1 "resumed:" <(tail -n +1 -f "$log") || { cat "$log"; exit 1; }
daemon_line=$(grep -m1 "resumed:" "$log" | sed 's/^clocksync.sync: //')
after=$(ruler_us)
echo "   daemon: $daemon_line"
echo "   independent measurement right after:          $(human "$after")"

echo
echo "== summary: guest offset after a 5 s pause (reference agent, min-RTT of 30 samples)"
printf "   %-34s %14s\n" "method" "offset"
printf "   %-34s %14s\n" "nothing" "$(human "$nothing")"
printf "   %-34s %14s\n" "virsh domtime --now" "$(human "$now")"
printf "   %-34s %14s\n" "virsh domtime --sync" "$(human "$sync")"
printf "   %-34s %14s\n" "virt-clocksyncd" "$(human "$after")"
python3 -c 'import sys; n,d=abs(float(sys.argv[1])),max(abs(float(sys.argv[2])),1.0)
print("   virt-clocksyncd left the guest %.0fx closer than virsh domtime --now" % (n/d))' "$now" "$after"
