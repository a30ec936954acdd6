#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Helpers for the end-to-end cases: lab guests under a real (session) libvirtd,
# the daemon under test running as the lab user, and the independent ruler:
# contrib/ruler/ruler.py (shares no code with the daemon) reading the guest's
# read-only reference agent straight from its host socket.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$E2E_DIR/../.." && pwd)"
BIN="${CLOCKSYNC_BIN:-$REPO/build/default/agent}"
LAB="bash $REPO/contrib/lab/lab.sh"
WORK=$(mktemp -d /tmp/clocksync-e2e.XXXXXX)
chmod 0755 "$WORK"
$LAB setup # the lab user must exist before anything is handed to it
[ "$(id -u)" -ne 0 ] || chown "$($LAB user):" "$WORK"
RULER="python3 $REPO/contrib/ruler/ruler.py"
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

# Residual bound of the single-guest cases: 300 us. Why that number:
# - the daemon's target is 50 us, and it reports success only after its own
#   verify through libvirt (uncertainty = that verify's RTT/2, 100-250 us here);
# - the ruler's repeatability on the guest path (ruler.py repeat, 40 readings
#   over 12 s of an idle TCG lab guest, drift removed; bench.py prints it):
#   stdev 13-20 us, p95 |deviation| 23-35 us; each reading's worst-case
#   uncertainty (min RTT/2) is 100-130 us, the guest drifts ~1 us/s;
# - the daemon's verify and the ruler's reading are < 1 s apart.
# So a daemon that says "synced" reads within ~50 + 35 + 1 us on the ruler;
# 300 us catches one that claims it without verifying (lands -480 us median).
# It binds "synced" and "in-sync" only: a daemon that stops "approximate" says
# why (the sets scatter more than the target: a CI host read sets scattering
# by ~300 us) and is held to the tolerance, 1 ms, and to its claim agreeing
# with the ruler. Aim (a missing delay compensation, a constant offset) is
# judged where noise averages out: the repeated cases' mean (cases.sh).
# Multi-guest cases: 500 us (four TCG guests on two cores).
RESIDUAL_MAX_US=${RESIDUAL_MAX_US:-300}
# Extra room, beyond the daemon's own stated uncertainty, when comparing its
# verified offset with the ruler's reading: the ruler's repeatability (p95
# 23-35 us, bench) plus drift until the reading (TCG: up to ~15 us/s).
AGREE_SLACK_US=${AGREE_SLACK_US:-60}

log() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $CASE_START" | bc)" "$*"; }

# skip REASON: exit 77 (ctest: skipped); under CI=true nothing may be skipped
# silently, so there it is a failure.
skip() {
    if [ "${CI:-}" = "true" ]; then
        echo "e2e: cannot run under CI: $*"
        exit 1
    fi
    echo "e2e: skipping: $*"
    exit 77
}

skip_unless_possible() {
    if [ "$(id -u)" -ne 0 ] && ! virsh -c qemu:///session version >/dev/null 2>&1; then
        skip "needs root or libvirt session access"
    fi
    [ -x "$BIN/virt-clocksyncd" ] || { echo "e2e: build first ($BIN)"; exit 1; }
    stage_binaries
}

dump_diagnostics() {
    echo "---- daemon log ----"
    cat "$DAEMON_LOG" 2>/dev/null || true
    if [ -s "$DAEMON2_LOG" ]; then
        echo "---- second daemon's log ----"
        cat "$DAEMON2_LOG"
    fi
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
    # A system-mode case started the lab's root libvirtd: nothing is left running.
    [ -z "${LAB_SYSTEM:-}" ] || $LAB system stop >/dev/null 2>&1 || true
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
# CLI_URI: the CLI's -c (the lab's session daemon unless set); CLI_CONTROL:
# its --control, if the daemon's socket is not the default one. --config
# /dev/null: the CLI reads no /etc config the host may have (hermetic).
cli() { $LAB run "$BIN/virt-clocksync" --config /dev/null --uri "${CLI_URI:-qemu:///session}" ${CLI_CONTROL:+--control "$CLI_CONTROL"} "$@"; }

# The engine's debug lines (each set: its delay estimate, reply time and
# verified offset) go to the daemon's log, which a failing case prints: a
# failure seen only in CI's output must say what the daemon did.
DAEMON_DEBUG=QT_LOGGING_RULES=clocksync.engine.debug=true

# start_daemon [CONFIG-LINES...]: the daemon under test, on DAEMON_URI (the
# lab's session daemon unless set, e.g. to the peer's URI; "default": no uri
# line, the daemon's own default), with DAEMON_CONTROL as its control socket
# if set.
start_daemon() {
    {
        echo "[daemon]"
        [ "${DAEMON_URI:-}" = default ] || echo "uri = ${DAEMON_URI:-qemu:///session}"
        [ -z "${DAEMON_CONTROL:-}" ] || echo "control-socket = $DAEMON_CONTROL"
        echo "agent-wait-seconds = ${AGENT_WAIT:-30}"
        for l in "$@"; do echo "$l"; done
    } > "$WORK/daemon.conf"
    chmod 0644 "$WORK/daemon.conf"
    : > "$DAEMON_LOG"
    chmod 0666 "$DAEMON_LOG"
    LOG_MARK=0
    $LAB run env "$DAEMON_DEBUG" "$BIN/virt-clocksyncd" --config "$WORK/daemon.conf" >> "$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_log "control socket" 20
}

# DAEMON_PID is the daemon's own pid (lab.sh run execs): it is signalled and waited for.
stop_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
    fi
    if [ -n "$DAEMON2_PID" ]; then
        kill "$DAEMON2_PID" 2>/dev/null || true
        wait "$DAEMON2_PID" 2>/dev/null || true
        DAEMON2_PID=""
    fi
}

# start_second_daemon URI: another virt-clocksyncd (own config, control socket
# and log: DAEMON2_LOG) on another libvirt daemon, e.g. both sides of a migration.
DAEMON2_PID=""
DAEMON2_LOG="$WORK/daemon2.log"
start_second_daemon() {
    printf '[daemon]\nuri = %s\ncontrol-socket = %s/control2.sock\n' "$1" "$WORK" > "$WORK/daemon2.conf"
    chmod 0644 "$WORK/daemon2.conf"
    : > "$DAEMON2_LOG"
    chmod 0666 "$DAEMON2_LOG"
    $LAB run env "$DAEMON_DEBUG" "$BIN/virt-clocksyncd" --config "$WORK/daemon2.conf" >> "$DAEMON2_LOG" 2>&1 &
    DAEMON2_PID=$!
    timeout 20 grep -q -m 1 "control socket" <(tail -f "$DAEMON2_LOG") ||
        fail "the second daemon did not start: $(cat "$DAEMON2_LOG")"
}

# mark_log: later wait_log calls only look at lines written after this point.
LOG_MARK=0
mark_log() { LOG_MARK=$(wc -l < "$DAEMON_LOG"); }

# wait_log PATTERN TIMEOUT: waits until a line after the mark matches PATTERN
# (extended regex), logs it and keeps it in WAIT_LINE (assert_residual checks
# the daemon's claim in it against the ruler). Event-driven (tail -f), bounded
# by TIMEOUT. Never call it in $(...): a failure must end the case.
WAIT_LINE=""
# WAIT_COUNT=N: wait for the Nth matching line instead (WAIT_LINE: that one).
wait_log() {
    local pattern=$1 timeout=$2 n=${WAIT_COUNT:-1} lines
    lines=$(timeout "$timeout" grep -E -m "$n" "$pattern" <(tail -n "+$((LOG_MARK + 1))" -f "$DAEMON_LOG")) ||
        fail "no daemon log line matching '$pattern' ($n) within $timeout s"
    [ "$(grep -c . <<<"$lines")" -eq "$n" ] || fail "only $(grep -c . <<<"$lines") line(s) matching '$pattern' within $timeout s"
    WAIT_LINE=$(tail -1 <<<"$lines")
    while IFS= read -r line; do log "daemon: ${line#clocksync.*: }"; done <<<"$lines"
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

# ON_PEER: the guests now running on the peer daemon (migrated there): the
# ruler reads their reference socket on that side.
ON_PEER=""
ref_socket() {
    case " $ON_PEER " in
        *" $1 "*) $LAB ref "$1" --peer ;;
        *) $LAB ref "$1" ;;
    esac
}

# ruler GUEST: one independent reading (JSON: offset_ns, uncertainty_ns, rtt_ns, ...).
ruler() { $RULER read "$(ref_socket "$1")" --samples 30; }

# ruler_us GUEST: offset in microseconds, independent of libvirt and of the daemon's code.
ruler_us() { ruler "$1" | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["offset_ns"] / 1000))'; }

# assert_residual GUEST WHAT [DAEMON-LINE]: the ruler reads the guest within
# RESIDUAL_MAX_US, and the daemon's own claim (DAEMON-LINE, default the last
# wait_log line: its outcome and verified offset +/- uncertainty) agrees with
# the ruler within its own stated uncertainty plus AGREE_SLACK_US.
# INTENDED_US: the offset the guest runs at on purpose (clock offset='variable').
INTENDED_US=0
assert_residual() {
    local guest=$1 what=$2 line=${3-$WAIT_LINE} reading verdict
    reading=$(ruler "$guest")
    verdict=$(python3 "$E2E_DIR/check_claim.py" "$guest" "$RESIDUAL_MAX_US" "$AGREE_SLACK_US" \
        "$reading" "$line" "$INTENDED_US") || { log "$guest after $what: $verdict"; fail "$guest after $what: $verdict"; }
    log "$guest: after $what: $verdict"
    LAST_VERDICT=$verdict
    echo "RESULT case=$CASE guest=$guest event=\"$what\" $verdict" >> "${E2E_RESULTS:-/dev/null}"
}

# assert_offset_beyond GUEST MIN_US: the guest is at least MIN_US off its
# intended time (INTENDED_US): left alone.
assert_offset_beyond() {
    local guest=$1 min_us=$2 us
    us=$(python3 -c 'import sys; print("%.1f" % (float(sys.argv[1]) - float(sys.argv[2])))' \
        "$(ruler_us "$guest")" "$INTENDED_US")
    log "$guest: independent offset $us us (expected beyond $min_us us)"
    python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1])) >= float(sys.argv[2]) else 1)' \
        "$us" "$min_us" || fail "$guest: offset $us us, expected the guest to be left off by >= $min_us us"
}

# offset_within GUEST MAX_US WHAT: one ruler reading, whatever the daemon is
# doing at that moment (no claim of its is involved): true if within MAX_US.
# Logged with the reading's uncertainty and round trip (a slow reading and a
# clock that is off look alike in the offset alone), recorded in E2E_RESULTS
# as WHAT; the offset is left in OFFSET_US.
OFFSET_US=""
offset_within() {
    local guest=$1 max_us=$2 what=$3 detail
    IFS=$'\t' read -r OFFSET_US detail < <(ruler "$guest" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print("%.1f\t(+/-%.1f, RTT %.1f us, median RTT %.1f us)" % (r["offset_ns"] / 1e3,
      r["uncertainty_ns"] / 1e3, r["rtt_ns"] / 1e3, r["rtt_median_ns"] / 1e3))')
    [ -n "$OFFSET_US" ] || fail "$guest: $what: the ruler gave no reading"
    log "$guest: $what: ruler $OFFSET_US us $detail (bound $max_us us)"
    echo "RESULT case=$CASE guest=$guest event=\"$what\" residual_us=$OFFSET_US" >> "${E2E_RESULTS:-/dev/null}"
    python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1])) <= float(sys.argv[2]) else 1)' \
        "$OFFSET_US" "$max_us"
}

lab_up() { $LAB up "$@"; }

# pause_resume GUEST SECONDS: the scenario of most cases, a pause of that
# length (the sleep *is* the scenario, not a synchronisation), from a marked
# log; then waits for the daemon's verified result of the resume.
pause_resume() {
    mark_log
    lvirsh suspend "$1" >/dev/null
    sleep "$2"
    lvirsh resume "$1" >/dev/null
    wait_log "$1: resumed: (synced|approximate)" 30
}
