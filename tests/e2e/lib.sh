#!/bin/bash
# Helpers for the end-to-end cases: lab guests under a real (session) libvirtd,
# the daemon under test running as the lab user, and the independent ruler
# (the guest's read-only reference agent, read straight from its host socket).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$E2E_DIR/../.." && pwd)"
BIN="${CLOCKSYNC_BIN:-$REPO/build/default/agent}"
LAB="bash $REPO/contrib/lab/lab.sh"
WORK=$(mktemp -d /tmp/clocksync-e2e.XXXXXX)
chmod 0755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$($LAB user):" "$WORK"
# The lab user runs the daemon and the CLI, and may not be able to reach the
# build tree (a checkout under /root, a 0700 temporary clone): stage copies.
stage_binaries() {
    mkdir -p "$WORK/bin"
    cp "$BIN/virt-clocksyncd" "$BIN/virt-clocksync" "$WORK/bin/"
    chmod 0755 "$WORK/bin" "$WORK/bin/"*
    BIN="$WORK/bin"
}
DAEMON_LOG="$WORK/daemon.log"
DAEMON_PID=""
CASE_START=$(date +%s.%N)

# Residual bound for every case: 1 ms. Why: the ruler's own min-RTT is
# ~0.3 ms (so +/-0.15 ms), a single set through libvirt lands with a jitter
# of ~0.3 ms under TCG, and the daemon only reports success once its own
# verify (min-RTT through libvirt) is within the 1 ms tolerance.
RESIDUAL_MAX_US=${RESIDUAL_MAX_US:-1000}

log() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $CASE_START" | bc)" "$*"; }

skip_unless_possible() {
    if [ "$(id -u)" -ne 0 ] && ! virsh -c qemu:///session version >/dev/null 2>&1; then
        echo "e2e: needs root or libvirt session access; skipping"
        exit 77
    fi
    [ -x "$BIN/virt-clocksyncd" ] || { echo "e2e: build first ($BIN)"; exit 1; }
    stage_binaries
}

dump_diagnostics() {
    echo "---- daemon log ----"
    cat "$DAEMON_LOG" 2>/dev/null || true
    for g in $($LAB virsh list --all --name 2>/dev/null | grep '^clocklab-' || true); do
        echo "---- console of $g (last 30 lines) ----"
        $LAB console "$g" 2>/dev/null | tail -30 || true
    done
}

CLEANUP="" # a command a case needs run at exit, before the lab goes down
finish() {
    local rc=$?
    [ -z "$CLEANUP" ] || eval "$CLEANUP" 2>/dev/null || true
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        echo "FAILED (exit $rc)"
        dump_diagnostics
    fi
    stop_daemon
    $LAB down >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

fail() {
    echo "ASSERTION FAILED: $*"
    exit 1
}

lvirsh() { $LAB virsh "$@"; }
cli() { $LAB run "$BIN/virt-clocksync" --uri qemu:///session "$@"; }

# start_daemon [CONFIG-LINES...]
start_daemon() {
    {
        echo "[daemon]"
        echo "uri = qemu:///session"
        echo "agent-wait-seconds = ${AGENT_WAIT:-30}"
        for l in "$@"; do echo "$l"; done
    } > "$WORK/daemon.conf"
    chmod 0644 "$WORK/daemon.conf"
    : > "$DAEMON_LOG"
    chmod 0666 "$DAEMON_LOG"
    LOG_MARK=0
    $LAB run "$BIN/virt-clocksyncd" --config "$WORK/daemon.conf" >> "$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_log "control socket" 20
}

stop_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
    fi
}

# mark_log: later wait_log calls only look at lines written after this point.
LOG_MARK=0
mark_log() { LOG_MARK=$(wc -l < "$DAEMON_LOG"); }

# wait_log PATTERN TIMEOUT: waits until a line after the mark matches PATTERN
# (extended regex), and logs it. Event-driven (tail -f), bounded by TIMEOUT.
# Never call it in $(...): a failure must end the case.
wait_log() {
    local pattern=$1 timeout=$2 line
    line=$(timeout "$timeout" grep -E -m 1 "$pattern" <(tail -n "+$((LOG_MARK + 1))" -f "$DAEMON_LOG")) ||
        fail "no daemon log line matching '$pattern' within $timeout s"
    log "daemon: ${line#clocksync.*: }"
}

# wait_until DESCRIPTION TIMEOUT CMD...: polls CMD (every 0.1 s) until it
# succeeds; fails the case at the deadline. For state that no log line shows.
wait_until() {
    local what=$1 timeout=$2 deadline
    shift 2
    deadline=$(( $(date +%s) + timeout ))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within $timeout s"
        sleep 0.1
    done
    log "$what"
}

count_log() { grep -cE "$1" "$DAEMON_LOG" || true; }

# ruler_us GUEST: offset in microseconds, independent of libvirt.
ruler_us() {
    # exit 3 only says "outside tolerance": the number is what we want
    { cli --json offset "$1" --socket "$($LAB ref "$1")" --samples 30 || [ $? -eq 3 ]; } |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["offset_ns"] / 1000))'
}

assert_residual() {
    local guest=$1 what=$2 us
    us=$(ruler_us "$guest")
    log "$guest: independent residual after $what: $us us (bound $RESIDUAL_MAX_US us)"
    echo "RESULT case=$CASE guest=$guest event=\"$what\" residual_us=$us" >> "${E2E_RESULTS:-/dev/null}"
    python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1])) <= float(sys.argv[2]) else 1)' \
        "$us" "$RESIDUAL_MAX_US" || fail "$guest: residual $us us exceeds $RESIDUAL_MAX_US us after $what"
}

assert_offset_beyond() {
    local guest=$1 min_us=$2 us
    us=$(ruler_us "$guest")
    log "$guest: independent offset $us us (expected beyond $min_us us)"
    python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1])) >= float(sys.argv[2]) else 1)' \
        "$us" "$min_us" || fail "$guest: offset $us us, expected the guest to be left off by >= $min_us us"
}

lab_up() { $LAB up "$@"; }
