#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The end-to-end cases on lab guests (README, "The lab"). Usage: cases.sh CASE
# Each case brings up its own guests, starts the daemon, acts, and asserts the
# guest offset measured independently (reference agent), then tears down.
source "$(dirname "$0")/lib.sh"
CASE=${1:?case name}
skip_unless_possible
$LAB down >/dev/null 2>&1 || true

case_suspend_resume() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    pause_resume "$g" 5
    assert_residual "$g" "suspend 5 s / resume"
}

case_save_restore() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh save "$g" "$WORK/$g.save" >/dev/null
    sleep 3 # time passes while saved
    lvirsh restore "$WORK/$g.save" >/dev/null
    # The agent reconnects after the restore; the sync must wait for it, not fail.
    wait_log "$g: restored: (synced|approximate)" 60
    [ "$(count_log "$g: restored: failed")" -eq 0 ] || fail "restore sync failed"
    assert_residual "$g" "save / 3 s / restore"
}

case_managedsave() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh managedsave "$g" >/dev/null
    sleep 3
    lvirsh start "$g" >/dev/null
    wait_log "$g: restored: (synced|approximate)" 60
    assert_residual "$g" "managedsave / 3 s / start"
}

case_snapshot_revert() {
    g=$(lab_up -n 1 --disk)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh snapshot-create-as "$g" snap1 >/dev/null
    sleep 5 # time passes after the snapshot
    lvirsh snapshot-revert "$g" snap1 >/dev/null
    wait_log "$g: snapshot-reverted: (synced|approximate)" 60
    assert_residual "$g" "snapshot / 5 s / revert"
}

case_wrong_clock_request() {
    g=$(lab_up -n 1)
    # (virsh domtime --time makes the guest wrong on purpose here: with
    # on-rtc-change the daemon would correct it at once, case rtc_changed)
    start_daemon "[sync]" "on-rtc-change = no"
    wait_log "$g: reconcile:" 30
    lvirsh domtime "$g" --time $(( $(date +%s) - 300 )) >/dev/null
    assert_offset_beyond "$g" 250000000
    out=$(cli sync "$g")
    log "cli: $out"
    assert_residual "$g" "clock 5 min wrong, virt-clocksync sync" "$out"
    lvirsh domtime "$g" --time $(( $(date +%s) + 420 )) >/dev/null
    assert_offset_beyond "$g" 350000000
    mark_log
    cli policy "$g" --set "resync=$(date +%s%N)" >/dev/null
    wait_log "$g: policy-changed: (synced|approximate)" 30
    assert_residual "$g" "clock 7 min wrong, metadata resync request"
}

case_libvirtd_restart() {
    g=$(lab_up -n 1)
    # An explicit socket: the daemon cannot autostart libvirtd itself.
    sock="/run/clocklab-runtime/libvirt/libvirt-sock"
    [ "$(id -u)" -eq 0 ] || sock="$XDG_RUNTIME_DIR/libvirt/libvirt-sock"
    start_daemon "uri = qemu+unix:///session?socket=$sock"
    wait_log "$g: reconcile:" 30
    mark_log
    $LAB run pkill -KILL -x libvirtd
    wait_log "connection to .* lost" 30
    log "libvirtd killed; the daemon noticed"
    mark_log
    lvirsh suspend "$g" >/dev/null # autostarts a new libvirtd
    sleep 3
    lvirsh resume "$g" >/dev/null
    wait_log "reconnected to" 60
    # Whether the daemon was back before the resume (event) or after (reconcile), it syncs.
    wait_log "$g: (reconcile|resumed): (synced|approximate)" 60
    assert_residual "$g" "libvirtd killed, guest paused 3 s during the outage"
    pause_resume "$g" 3
    assert_residual "$g" "suspend/resume after the reconnect"
}

# libvirtd dies while a sync is in flight. The guest's QEMU is frozen
# (SIGSTOP) so the sync's first agent call cannot complete; with the guest
# clock 5 min behind, a sync that went on with stale data would leave it
# visibly wrong. Expected: the in-flight sync fails with libvirt's reason (no
# set is made), the daemon reconnects when libvirtd is back and the
# reconcile sync then sets the guest right.
case_libvirtd_killed_mid_sync() {
    g=$(lab_up -n 1)
    sock="/run/clocklab-runtime/libvirt/libvirt-sock"
    [ "$(id -u)" -eq 0 ] || sock="$XDG_RUNTIME_DIR/libvirt/libvirt-sock"
    start_daemon "uri = qemu+unix:///session?socket=$sock" "agent-timeout-seconds = 60" \
        "[sync]" "on-rtc-change = no"
    wait_log "$g: reconcile:" 30
    lvirsh domtime "$g" --time $(( $(date +%s) - 300 )) >/dev/null
    assert_offset_beyond "$g" 250000000
    qemu=$(pgrep -u "$($LAB user)" -f "guest=$g," | head -1)
    [ -n "$qemu" ] || fail "no QEMU process for $g"
    mark_log
    kill -STOP "$qemu"
    CLEANUP="kill -CONT $qemu"
    { rc=0; cli sync "$g" > "$WORK/sync.out" 2>&1 || rc=$?; echo $rc > "$WORK/sync.rc"; } &
    syncjob=$!
    syncing() { cli --json status "$g" 2>/dev/null | grep -q '"state": *"syncing"'; }
    wait_until "$g: the daemon's sync is in flight (guest frozen)" 20 syncing
    $LAB run pkill -KILL -x libvirtd
    wait_log "connection to .* lost" 30
    kill -CONT "$qemu"
    log "libvirtd killed mid-sync; QEMU thawed"
    # The daemon gives up on libvirt after 30 s from the request ("libvirt
    # could not be asked within 30 s"): the wait must outlast that bound, not
    # race it (it once missed by a few ms in a full run).
    wait_log "$g: request: " 45
    wait "$syncjob"
    log "cli (exit $(cat "$WORK/sync.rc")): $(cat "$WORK/sync.out")"
    [ "$(cat "$WORK/sync.rc")" -ne 0 ] || fail "the interrupted sync reported success"
    grep -E "$g: request: " "$DAEMON_LOG" | grep -qvE "synced|approximate" ||
        fail "the interrupted sync claims a result"
    assert_offset_beyond "$g" 250000000 # nothing was set
    kill -0 "$DAEMON_PID" || fail "daemon died"
    mark_log
    lvirsh list >/dev/null # autostarts a new libvirtd
    wait_log "reconnected to" 60
    # The failed request's own retry, or the reconcile, whichever runs
    # first once libvirt is back (libvirt that cannot be asked is retried).
    wait_log "$g: (reconcile|request): (synced|approximate)" 60
    assert_residual "$g" "libvirtd killed mid-sync, reconnect, reconcile"
}

case_agent_missing_and_late() {
    AGENT_WAIT=25
    noagent=$(lab_up -n 1 --append clocksync.noagent --no-wait)
    late=$(lab_up -n 1 --first 2 --append clocksync.agentdelay=12 --no-wait)
    start_daemon
    cli status || true
    wait_log "$late: reconcile: (synced|approximate|in-sync)" 60
    assert_residual "$late" "agent started 12 s after boot"
    wait_log "$noagent: reconcile: failed" 60
    grep -q "did not connect within 25 s" "$DAEMON_LOG" || fail "no clear agent error"
    { cli status || [ $? -eq 3 ]; } | tee "$WORK/status.txt" # 3: a guest is not in sync
    grep -q "did not connect" "$WORK/status.txt" || fail "status does not explain the missing agent"
    kill -0 "$DAEMON_PID" || fail "daemon died"
}

# at_once N: N TCG guests on this machine's two cores suspended, then resumed
# at the same moment (a host wake, libvirt-guests restoring a host). A sync
# brings each guest within tolerance at once and refines only when the path
# is quiet again (docs/design.md §4, §6), other guests' first sets first. What this
# proves: every guest ends verified (none failed, none left unverified), every
# claim is true, and each guest reads within MULTI_RESIDUAL_MAX_US on the
# ruler after the refine. The bound, from the storm bench (contrib/bench,
# --sections storm: 8 guests, 3 runs, ruler after all are done): see README.
MULTI_RESIDUAL_MAX_US=${MULTI_RESIDUAL_MAX_US:-500}
at_once() {
    local n=$1
    RESIDUAL_MAX_US=$MULTI_RESIDUAL_MAX_US
    guests=$(lab_up -n "$n")
    start_daemon "concurrency = ${AT_ONCE_CONCURRENCY:-4}"
    for g in $guests; do wait_log "$g: reconcile:" 90; done
    mark_log
    for g in $guests; do lvirsh suspend "$g" >/dev/null; done
    sleep 3 # the pause is the scenario
    t0=$(date +%s.%N)
    pids=()
    for g in $guests; do lvirsh resume "$g" >/dev/null & pids+=($!); done
    wait "${pids[@]}"
    for g in $guests; do wait_log "$g: resumed: (synced|approximate|failed|cancelled)" 60; done
    log "all $n answered $(echo "$(date +%s.%N) - $t0" | bc) s after the resume commands"
    local line
    for g in $guests; do
        line=$(tail -n "+$((LOG_MARK + 1))" "$DAEMON_LOG" | grep -E "$g: resumed: " | tail -1)
        assert_residual "$g" "$n guests resumed at once" "$line"
    done
}

# Six with four workers: four at once and two queued behind them (four
# alone, one per worker, was its own case: the queue is the harder path).
case_six_at_once() { at_once 6; }

# mode=off leaves the guest alone; mode=host (how an operator turns syncing
# back on) syncs it again -- to its intended time: this guest runs at host +
# 3600 s on purpose (<clock offset='variable'>), and an explicit mode=host
# must not drop that.
case_policy_off() {
    g=$(lab_up -n 1 --clock-adjust 3600)
    INTENDED_US=3600000000
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    cli policy "$g" --set mode=off >/dev/null
    wait_log "$g: policy-changed: skipped" 30
    mark_log
    lvirsh suspend "$g" >/dev/null
    sleep 3
    lvirsh resume "$g" >/dev/null
    wait_log "$g: resumed: skipped" 30
    assert_offset_beyond "$g" 2500000 # left alone: ~3 s behind
    mark_log
    cli policy "$g" --set mode=host >/dev/null
    wait_log "$g: policy-changed: (synced|approximate)" 30
    grep -q "target host +3600.000 s" <<< "$WAIT_LINE" || fail "mode=host dropped the intended offset"
    assert_residual "$g" "policy changed live from off to host (a guest at host + 3600 s)"
}

# SIGHUP: the config file and a new drop-in are read again while the daemon
# runs; the guest stays tracked (same process, its status row kept) and the
# new settings apply to the next sync at once.
case_sighup_reload() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    local pid=$DAEMON_PID
    mark_log
    printf '[sync]\nattempts = 3\n' >> "$WORK/daemon.conf"
    mkdir -p "$WORK/daemon.conf.d"
    printf '[sync]\ntolerance-us = 5000000\n' > "$WORK/daemon.conf.d/50-wide.conf"
    printf '[sync]\ntolerance-us = 1\n' > "$WORK/daemon.conf.d/60-not-read.conf.off"
    chmod -R a+rX "$WORK/daemon.conf.d"
    kill -HUP "$pid"
    wait_log "reloaded the config: 2 change\(s\): tolerance-us = 5000000, attempts = 3$" 10
    kill -0 "$pid" || fail "the daemon exited on SIGHUP"
    cli status "$g" | tee "$WORK/status.txt"
    # Still tracked; the reload's new defaults had every running guest
    # checked again (policy-changed), as a policy edit would.
    grep -qE "^$g .*(reconcile|policy-changed)" "$WORK/status.txt" || fail "SIGHUP lost $g's state"
    mark_log
    lvirsh suspend "$g" >/dev/null
    sleep 3 # the pause the guest's clock falls behind by
    lvirsh resume "$g" >/dev/null
    wait_log "$g: resumed: in-sync, offset -(2|3)\.[0-9]+ s" 30 # within the new 5 s tolerance
    assert_offset_beyond "$g" 2000000 # left alone, as the reloaded policy says
}

# The user unit's command line as the build configured it
# (conf/virt-clocksyncd.user.service), run as the lab user the way `systemctl
# --user` would: no config file, no control socket given -- the session URI
# from the command line, the user's default socket, where the CLI finds it.
case_session_user_unit() {
    local unit=${CLOCKSYNC_USER_UNIT:-$REPO/build/default/conf/virt-clocksyncd.user.service} argv
    [ -f "$unit" ] || fail "no configured user unit at $unit"
    read -r -a argv <<< "$(sed -n 's/^ExecStart=//p' "$unit")"
    [ "${#argv[@]}" -gt 0 ] || fail "no ExecStart in $unit"
    log "ExecStart=${argv[*]}"
    argv[0]="$BIN/$(basename "${argv[0]}")" # the build's binary, staged for the lab user
    g=$(lab_up -n 1)
    : > "$DAEMON_LOG"
    chmod 0666 "$DAEMON_LOG"
    LOG_MARK=0
    $LAB run env "$DAEMON_DEBUG" "${argv[@]}" >> "$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_log "connected to qemu:///session" 20
    wait_log "$g: reconcile:" 30
    pause_resume "$g" 3
    assert_residual "$g" "suspend 3 s / resume (the user unit's command line)"
    cli status "$g" | tee "$WORK/status.txt"
    grep -qE "^$g +idle .* resumed +(synced|approximate)" "$WORK/status.txt" ||
        fail "status (the default session socket) does not show $g synced"
}

# ---- live migration between two libvirt daemons on this host --------------
# The lab's session libvirtd is the source; `lab.sh peer` starts a second one
# (own XDG dirs, own host_uuid) as the destination; `lab.sh migrate` moves a
# disk-less guest there (client-driven, TCP on loopback).

# Pre-copy: the daemon watching the destination verifies the guest once it
# runs there (trigger migrated-in, counted from RESUMED_MIGRATED).
case_migrate_precopy() {
    local peer
    peer=$($LAB peer start)
    g=$(lab_up -n 1)
    DAEMON_URI=$peer start_daemon
    mark_log
    $LAB migrate "$g"
    ON_PEER=$g
    [ "$($LAB peer virsh domstate "$g")" = running ] || fail "$g does not run on the peer"
    wait_log "$g: migrated-in: (synced|approximate|in-sync)" 30
    assert_residual "$g" "live migration (pre-copy) to another libvirtd"
}

# Post-copy (QEMU needs userfaultfd, which an unprivileged QEMU only gets with
# vm.unprivileged_userfaultfd=1: set for the case, restored after). The
# migration starts throttled, and is switched to post-copy (migrate-postcopy)
# once it runs: the guest runs on the destination from RESUMED_POSTCOPY on,
# while its memory still arrives; RESUMED_MIGRATED, when the last page is in,
# is checked again (README: why).
case_migrate_postcopy() {
    local peer old
    old=$(sysctl -n vm.unprivileged_userfaultfd)
    sysctl -qw vm.unprivileged_userfaultfd=1
    CLEANUP="sysctl -qw vm.unprivileged_userfaultfd=$old"
    peer=$($LAB peer start)
    g=$(lab_up -n 1)
    DAEMON_URI=$peer start_daemon
    mark_log
    $LAB migrate "$g" --postcopy --bandwidth 4 > "$WORK/migrate.out" 2>&1 &
    local mig=$! deadline=$((SECONDS + 30))
    # Memory already flowing: QEMU refuses the switch before the migration runs.
    until lvirsh domjobinfo "$g" 2>/dev/null | grep -qE "Data processed: +[1-9]"; do
        [ $SECONDS -lt $deadline ] || fail "the migration of $g did not start"
        sleep 0.1 # polling the job, bounded by the deadline
    done
    lvirsh migrate-postcopy "$g"
    wait "$mig" || fail "the post-copy migration failed: $(cat "$WORK/migrate.out")"
    ON_PEER=$g
    # RESUMED_POSTCOPY starts a sync; RESUMED_MIGRATED, 20-150 ms later, joins
    # it if it has not started yet, else asks for one more check after it.
    wait_log "$g: runs here since the post-copy switch" 30
    LOG_MARK=$(grep -nE "$g: runs here since the post-copy switch" "$DAEMON_LOG" | head -1 | cut -d: -f1)
    wait_log "$g: (migrated-in: (synced|approximate|in-sync)|incoming migration complete)" 30
    early_sync_verified "$g" "$WAIT_LINE"
    settled() { cli --json status "$g" | python3 -c 'import json,sys
d=json.load(sys.stdin)["domains"][0]; sys.exit(0 if d["state"] == "idle" and "queued" not in d else 1)'; }
    wait_until "$g settled after the migration" 30 settled
    log "$(count_log "$g: migrated-in: ") sync(s) of $g on migrated-in"
    WAIT_LINE=$(grep -E "$g: migrated-in: " "$DAEMON_LOG" | tail -1)
    [[ "$WAIT_LINE" =~ migrated-in:\ (synced|approximate|in-sync) ]] || fail "the last check: $WAIT_LINE"
    assert_residual "$g" "live migration (post-copy) to another libvirtd"
}

# early_sync_verified GUEST LINE, LINE the first of the post-copy verdict and
# RESUMED_MIGRATED: the sync started at the post-copy switch verified the
# guest within RESIDUAL_MAX_US, or within the tolerance if it stopped
# "approximate" (as check_claim.py; its own claim: the ruler reads only the end,
# when the check at RESUMED_MIGRATED may have set again). A daemon that waits
# for RESUMED_MIGRATED gives one verdict, after it: it fails here.
early_sync_verified() {
    local g=$1 line=$2
    if [[ "$line" == *"incoming migration complete"* ]]; then
        # The early sync still under way at RESUMED_MIGRATED: its verdict, then the check's.
        WAIT_COUNT=2 wait_log "$g: migrated-in: (synced|approximate|in-sync)" 30
        line=$(tail -n "+$((LOG_MARK + 1))" "$DAEMON_LOG" | grep -E "$g: migrated-in: " | head -1)
    fi
    python3 - "$line" "${RESIDUAL_MAX_US:-300}" <<'PY' || fail "the early sync: $line"
import re, sys
line, bound = sys.argv[1], float(sys.argv[2])
if ": approximate," in line:
    bound = max(bound, 1000.0)  # the tolerance: it stopped short and says why
m = re.search(r"(?:-> |offset )([+-][0-9.]+) (us|ms|s) \(\+/-", line)
scale = {"us": 1, "ms": 1e3, "s": 1e6}
v = float(m.group(1)) * scale[m.group(2)] if m else None
print("the sync at the post-copy switch verified %s us (bound %.0f)" % (v, bound))
sys.exit(0 if v is not None and abs(v) <= bound else 1)
PY
}

# A migration that is cancelled while the guest is paused for it (not live,
# throttled to 1 MiB/s, aborted with domjobabort) resumes the guest on the
# source: the daemon watching the source syncs it as migration-failed.
case_migrate_failed() {
    $LAB peer start >/dev/null
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    { $LAB migrate "$g" --not-live --bandwidth 1 2>/dev/null; true; } >/dev/null &
    local mig=$! deadline=$((SECONDS + 30))
    until [ "$(lvirsh domstate "$g" 2>/dev/null)" = paused ]; do
        [ $SECONDS -lt $deadline ] || fail "$g never paused for its migration"
        sleep 0.1 # polling the domain state, bounded by the deadline
    done
    sleep 2 # the guest stays paused for the transfer: its clock falls behind
    lvirsh domjobabort "$g" >/dev/null
    wait "$mig" || true
    wait_log "$g: migration-failed: (synced|approximate)" 30
    [ "$(lvirsh domstate "$g")" = running ] || fail "$g does not run on the source after the abort"
    assert_residual "$g" "a cancelled migration (guest resumed on the source)"
}

# A migration slower than agent-wait-seconds: the wait starts when the guest
# runs on the destination, not at Prepare, so there is no false failure.
case_migrate_slow() {
    local peer
    peer=$($LAB peer start)
    g=$(lab_up -n 1)
    AGENT_WAIT=2 DAEMON_URI=$peer start_daemon
    mark_log
    local t0=$SECONDS
    $LAB migrate "$g" --bandwidth 8 # MiB/s: several seconds for the guest's memory
    ON_PEER=$g
    log "migration took $((SECONDS - t0)) s (agent-wait-seconds = 2)"
    [ $((SECONDS - t0)) -gt 2 ] || fail "the migration was not slower than agent-wait-seconds"
    wait_log "$g: migrated-in: (synced|approximate|in-sync)" 30
    ! grep -E "$g: [a-z-]+: failed" "$DAEMON_LOG" || fail "a false failure was logged"
    assert_residual "$g" "a migration slower than agent-wait-seconds"
}

# A daemon on each side, each given triggers: the source a sync request while
# the guest still runs there (the migration under way), then another
# and a reconcile once it has left; the destination its migrated-in and a
# reconcile. Exactly one daemon sets the guest at any time -- the one where it
# runs -- and the source never once it has left.
case_migrate_two_daemons() {
    local peer mig deadline src_mark reply
    peer=$($LAB peer start)
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    start_second_daemon "$peer"
    mark_log
    $LAB migrate "$g" --bandwidth 16 > "$WORK/migrate.out" 2>&1 &
    mig=$! deadline=$((SECONDS + 30))
    until lvirsh domjobinfo "$g" 2>/dev/null | grep -qE "Data processed: +[1-9]"; do
        [ $SECONDS -lt $deadline ] || fail "the migration of $g did not start"
        sleep 0.1 # polling the job, bounded by the deadline
    done
    # (A pause would end the migration at once: nothing left to copy.)
    reply=$(cli sync "$g" 2>&1) || fail "the source refused to sync $g while it still runs there: $reply"
    wait_log "$g: request: (synced|approximate|in-sync)" 30
    lvirsh domjobinfo "$g" 2>/dev/null | grep -q "Job type: *Unbounded" ||
        fail "the migration ended before the source's sync did: the case proves nothing"
    log "the source served a sync of $g while its migration was under way"
    wait "$mig" || fail "the migration failed: $(cat "$WORK/migrate.out")"
    ON_PEER=$g
    timeout 30 grep -q -m 1 -E "$g: migrated-in: (synced|approximate|in-sync)" <(tail -n +1 -f "$DAEMON2_LOG") ||
        fail "the destination's daemon did not sync $g"
    grep -E "$g: migrated-in: " "$DAEMON2_LOG" | tail -1 > "$WORK/dst.line"
    src_mark=$(wc -l < "$DAEMON_LOG")
    # The source asked to sync a guest that has left: refused, nothing set.
    if reply=$(cli sync "$g" 2>&1); then
        fail "the source's daemon accepted a sync of $g, which runs elsewhere: $reply"
    fi
    log "sync on the source after the migration: $reply"
    # A reconcile on both sides: each daemon restarted.
    tail -n "+$((src_mark + 1))" "$DAEMON_LOG" > "$WORK/src.after"
    cp "$DAEMON2_LOG" "$WORK/dst.before"
    stop_daemon
    start_daemon
    wait_log "reconciling [0-9]+ running domain" 30
    start_second_daemon "$peer"
    timeout 30 grep -q -m 1 -E "$g: reconcile: (synced|approximate|in-sync)" <(tail -n +1 -f "$DAEMON2_LOG") ||
        fail "the destination's daemon did not reconcile $g"
    log "destination reconcile: $(grep -E "$g: reconcile: " "$DAEMON2_LOG" | tail -1)"
    cat "$DAEMON_LOG" >> "$WORK/src.after"
    ! grep -E "$g: [a-z-]+: (synced|approximate|in-sync|failed)" "$WORK/src.after" ||
        fail "the source's daemon acted on $g after it left"
    [ "$(grep -cE "$g: [a-z-]+: (synced|approximate|in-sync)" "$WORK/dst.before")" -eq 1 ] ||
        fail "the destination gave more than one verdict for one migration: $(grep -E "$g: " "$WORK/dst.before")"
    log "source daemon after the migration: $(grep -c . "$WORK/src.after") line(s), none a sync of $g"
    assert_residual "$g" "migration watched by a daemon on each side" "$(cat "$WORK/dst.line")"
}

# ---- system-mode libvirt: qemu:///system, QEMU as libvirt-qemu -------------
# libvirtd (and virtlogd) are started by hand (lab.sh system start): Debian
# 12's monolithic daemon; no systemd in the test machine.
system_mode() {
    [ "$(id -u)" -eq 0 ] || skip "system-mode libvirt needs root"
    export LAB_SYSTEM=1
    $LAB system start
    CLI_URI=qemu:///system
}

# The daemon as root with nothing configured: the default URI and socket.
case_system_suspend_resume() {
    system_mode
    g=$(lab_up -n 1)
    DAEMON_URI=default start_daemon
    wait_log "connected to qemu:///system" 20
    wait_log "$g: reconcile:" 30
    pause_resume "$g" 3
    assert_residual "$g" "suspend 3 s / resume (system libvirtd, daemon as root)"
    cli status "$g" | tee "$WORK/status.txt"
    grep -qE "^$g +idle .* resumed +(synced|approximate)" "$WORK/status.txt" ||
        fail "status (default socket) does not show $g synced"
}

# The daemon as an unprivileged user in the libvirt group (README: running
# without root).
case_system_group_user() {
    system_mode
    local user
    user=$($LAB user)
    usermod -aG libvirt "$user"
    CLEANUP="gpasswd -d $user libvirt >/dev/null"
    g=$(lab_up -n 1)
    export LAB_RUN_AS=$user
    DAEMON_URI=default DAEMON_CONTROL=$WORK/control.sock start_daemon
    CLI_CONTROL=$WORK/control.sock
    wait_log "$g: reconcile:" 30
    [ "$(ps -o user= -p "$DAEMON_PID")" = "$user" ] || fail "the daemon does not run as $user"
    pause_resume "$g" 3
    assert_residual "$g" "suspend 3 s / resume (system libvirtd, daemon as a libvirt-group user)"
}

# Save/restore under the system daemon (~15 s here). It was out of the CI list
# while the engine refined at once: the restored guest's sync ran on a loaded
# path (the system libvirtd was busy with QEMU for ~50 s after the define) and
# failed in 1 run of 3 (-5.3 ms after 10 sets); with the two-phase engine it
# passed 6 of 6 (-15.9, +20.0, +47.9, -103.5, +50.5, -16.4 us on the ruler,
# the last in a fresh-machine run).
case_system_save_restore() {
    system_mode
    g=$(lab_up -n 1)
    DAEMON_URI=default start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh save "$g" "/var/lib/clocklab-system/$g.save" >/dev/null
    sleep 3 # time passes while saved
    lvirsh restore "/var/lib/clocklab-system/$g.save" >/dev/null
    wait_log "$g: restored: (synced|approximate)" 60
    assert_residual "$g" "save / 3 s / restore (system libvirtd)"
}

# ---- the Debian 12 guest (lab.sh --flavor debian): systemd, Debian's own
# qemu-guest-agent package and unit, systemd-timesyncd (no reachable server).
# Its guest-set-time returns only after util-linux's hwclock -w, which waits
# for the RTC's next second (up to ~1 s); the time itself is applied first.
# What an operator can accept: the guest within the daemon's tolerance (1 ms,
# phase 1's promise) DEBIAN_READ_AFTER_S after the event, whatever the daemon
# is still doing then; and within DEBIAN_RESIDUAL_MAX_US once the daemon gives
# its verdict, which must agree with the ruler (check_claim.py: a daemon that
# claims what it did not verify fails here). Why the tolerance for both and
# not less: a single set scatters by a stdev of ~190 us on this guest (bench
# bounds section, n=20), each set costs ~0.7 s, and the daemon stops at the
# set jitter; in 22 runs of these cases the ruler read up to -724 us at +3 s
# (the refine still under way) and up to -410 us after a verdict (median
# |residual| 76 us). A tighter bound here would fail a correct daemon now and
# then; what catches a broken one (no delay compensation, no verify, a
# constant error) is the lab guest's repeated cases' bias and its "synced"
# bound under the mutation check.
DEBIAN_READ_AFTER_S=${DEBIAN_READ_AFTER_S:-3}
DEBIAN_EARLY_MAX_US=${DEBIAN_EARLY_MAX_US:-1000}
DEBIAN_RESIDUAL_MAX_US=${DEBIAN_RESIDUAL_MAX_US:-1000}
# A set that lands off (the guest busy at that moment) leaves the guest there
# until the set's reply -- up to ~2.7 s here (hwclock) -- lets the daemon verify
# and set again. Measured: 3 of 56 sets after a resume landed beyond 1 ms
# (one refine set -1027 us, its reply 1993 ms), and CI once read -16.5 ms at +3 s.
# Such a reading is no failure of the daemon if the daemon's own verify saw the
# excursion (its log) and the guest is back within the bound within
# DEBIAN_RECOVER_S; a daemon that did not notice, or does not correct, fails.
DEBIAN_RECOVER_S=${DEBIAN_RECOVER_S:-3}

# debian_check GUEST WHAT EVENT-PATTERN, right after the event's command
# returned: the reading DEBIAN_READ_AFTER_S later within DEBIAN_EARLY_MAX_US (no
# claim: an independent reading; an excursion the daemon saw and corrected
# passes, see above), then the daemon's verdict, within DEBIAN_RESIDUAL_MAX_US
# and agreeing with the ruler.
debian_check() {
    local g=$1 what=$2 pattern=$3
    sleep "$DEBIAN_READ_AFTER_S" # the reading moment is the scenario, not a synchronisation
    offset_within "$g" "$DEBIAN_EARLY_MAX_US" "$what, read at +${DEBIAN_READ_AFTER_S} s" ||
        excursion_corrected "$g" "$what" "$DEBIAN_EARLY_MAX_US"
    wait_log "$g: $pattern: (synced|approximate)" 60
    RESIDUAL_MAX_US=$DEBIAN_RESIDUAL_MAX_US
    assert_residual "$g" "$what (the daemon's verdict)"
}

# excursion_corrected GUEST WHAT MAX_US, after a reading beyond MAX_US: the
# ruler reads the guest within MAX_US again before DEBIAN_RECOVER_S have
# passed, and by then the daemon's log (since the mark) shows a verify of its
# own that matches the excursion: beyond MAX_US, the same sign, and within
# 500 us + 10 % of it (500 us: the ruler's and a verify's uncertainty on this
# guest, ~200 and ~300 us; 10 %: what the guest's own clock discipline may
# move it in the seconds between). It saw this excursion, not just any.
excursion_corrected() {
    local g=$1 what=$2 max_us=$3 excursion=$OFFSET_US seen deadline
    deadline=$(( $(date +%s) + DEBIAN_RECOVER_S ))
    until offset_within "$g" "$max_us" "$what, after an excursion of $excursion us"; do
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "$g: $what: offset $excursion us at +${DEBIAN_READ_AFTER_S} s and still $OFFSET_US us ${DEBIAN_RECOVER_S} s later: not corrected"
        sleep 0.2 # polling the guest's clock, bounded by the deadline
    done
    seen=$(tail -n "+$((LOG_MARK + 1))" "$DAEMON_LOG" | python3 -c 'import re,sys
bound, x = float(sys.argv[1]), float(sys.argv[2])
def matches(v):
    return abs(v) > bound and (v > 0) == (x > 0) and abs(v - x) <= 500 + 0.1 * abs(x)
print(" ".join(m.group(1) for m in re.finditer(r"verified ([+-]?\d+) us", sys.stdin.read())
               if matches(float(m.group(1)))))' "$max_us" "$excursion")
    [ -n "$seen" ] || fail "$g: $what: offset $excursion us at +${DEBIAN_READ_AFTER_S} s, beyond the bound $max_us us, and no verify of the daemon saw it (none beyond the bound within 500 us + 10 % of it)"
    log "$g: $what: the excursion at +${DEBIAN_READ_AFTER_S} s was seen by the daemon's verify ($seen us) and corrected"
}

# guest_run GUEST CMD ARGS...: CMD's output in the guest (its main agent's guest-exec).
guest_run() {
    local g=$1 path=$2 pid out
    shift 2
    pid=$(lvirsh qemu-agent-command "$g" "$(python3 -c 'import json,sys; print(json.dumps({"execute": "guest-exec", "arguments": {"path": sys.argv[1], "arg": sys.argv[2:], "capture-output": True}}))' "$path" "$@")" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["return"]["pid"])')
    for _ in $(seq 100); do
        out=$(lvirsh qemu-agent-command "$g" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}")
        if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["return"]["exited"] else 1)' "$out"; then
            python3 -c 'import base64,json,sys; print(base64.b64decode(json.loads(sys.argv[1])["return"].get("out-data", "")).decode().strip())' "$out"
            return 0
        fi
        sleep 0.1 # polling the guest process's exit, bounded (10 s)
    done
    fail "$g: $path did not exit within 10 s"
}

debian_up() {
    g=$(lab_up -n 1 --flavor "${1:-debian}")
    start_daemon
    # It boots from its RTC (whole seconds): the reconcile sets it.
    wait_log "$g: reconcile: (synced|approximate|in-sync)" 60
    mark_log
}

# (Suspend/resume, save/restore and snapshot revert on the Debian guest are
# one case, case_debian_repeat_suspend_resume: one boot for all three.)

# chronyd installed and running with no source (an isolated network): it must
# not undo the daemon's result; read 10 s after the verdict.
case_debian_chrony() {
    debian_up debian-chrony
    [ "$(guest_run "$g" /bin/systemctl is-active chrony)" = active ] || fail "chronyd is not running in $g"
    log "$g: chronyd is running"
    lvirsh suspend "$g" >/dev/null
    sleep 5 # the pause is the scenario
    lvirsh resume "$g" >/dev/null
    debian_check "$g" "suspend 5 s / resume (chronyd running)" resumed
    sleep 10 # the reading moment is the scenario
    assert_residual "$g" "suspend 5 s / resume, 10 s after the verdict (chronyd running)"
}

case_drift_watch() {
    g=$(lab_up -n 1)
    start_daemon "[sync]" "on-rtc-change = no" # the drift is made with virsh domtime --time
    wait_log "$g: reconcile:" 30
    mark_log
    cli policy "$g" --set watch-interval=10 --set watch-correct=no >/dev/null
    wait_log "$g: policy-changed:" 30
    mark_log
    # The guest is set to a whole second, `date`'s second + 60, some
    # milliseconds after `date` ran: +59.x s, or +58.9x when `date` ran in
    # the last milliseconds of its second (a fresh-machine run read +58.989).
    lvirsh domtime "$g" --time $(( $(date +%s) + 60 )) >/dev/null
    assert_offset_beyond "$g" 50000000
    # measure-only: the watch reports the drift, and leaves the clock alone
    wait_log "$g: drift-watch: drifted, offset \+(58|59|60)\." 30
    cli metrics | grep "virt_clocksync_guest_offset_seconds{domain=\"$g\"}" | tee "$WORK/gauge"
    grep -qE ' (58|59|60)\.' "$WORK/gauge" || fail "the offset gauge does not show the drift"
    assert_offset_beyond "$g" 50000000
    mark_log
    cli policy "$g" --set watch-correct=yes >/dev/null
    wait_log "$g: policy-changed: (synced|approximate)" 30
    mark_log
    lvirsh domtime "$g" --time $(( $(date +%s) - 90 )) >/dev/null
    wait_log "$g: drift-watch: (synced|approximate), offset -(89|90|91)\." 30
    assert_residual "$g" "drift watch with watch-correct=yes, clock moved 90 s"
}

case_cli() {
    g=$(lab_up -n 1)
    for c in "check-host" "check-guest $g" "offset $g" "policy $g" "sync $g"; do
        log "virt-clocksync $c (direct)"
        cli $c || [ $? -eq 3 ] || fail "virt-clocksync $c failed"
    done
    # --deep needs guest-exec, which the policy must allow first.
    cli check-guest "$g" --deep | tee "$WORK/deep" || true
    grep -q "not checked: the guest's clocksource" "$WORK/deep" || fail "--deep ran without permission"
    cli policy "$g" --set guest-exec=yes >/dev/null
    cli check-guest "$g" --deep | tee "$WORK/deep" || true
    grep -q "guest clocksource *tsc" "$WORK/deep" || fail "--deep did not report the guest clocksource"
    start_daemon
    wait_log "$g: reconcile:" 30
    cli status "$g" | tee "$WORK/out"
    grep -q "$g" "$WORK/out" || fail "status does not list $g"
    cli metrics > "$WORK/metrics"
    grep -q '^virt_clocksync_syncs_total{trigger="reconcile"' "$WORK/metrics" || fail "metrics lack syncs"
    log "$(cli sync "$g")"
    cli --json status | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and d["domains"]'
}

# A sync request that arrives while a measure-only drift-watch check is
# running: the guest is corrected, and the CLI gets the request's own result
# (not the drift check's "drifted"). The check is held in flight by freezing
# the guest's QEMU (SIGSTOP) until the request is queued behind it.
case_request_during_drift_check() {
    g=$(lab_up -n 1)
    start_daemon "agent-timeout-seconds = 60" "[sync]" "on-rtc-change = no"
    wait_log "$g: reconcile:" 30
    cli policy "$g" --set watch-interval=10 --set watch-correct=no >/dev/null
    lvirsh domtime "$g" --time $(( $(date +%s) + 60 )) >/dev/null
    assert_offset_beyond "$g" 50000000
    qemu=$(pgrep -u "$($LAB user)" -f "guest=$g," | head -1)
    [ -n "$qemu" ] || fail "no QEMU process for $g"
    kill -STOP "$qemu"
    CLEANUP="kill -CONT $qemu"
    checking() { cli --json status "$g" 2>/dev/null | grep -q '"state": *"syncing"'; }
    wait_until "$g: a drift-watch check is in flight (guest frozen)" 30 checking
    { cli sync "$g" > "$WORK/sync.out" 2>&1; echo $? > "$WORK/sync.rc"; } &
    syncjob=$!
    queued() { cli --json status "$g" 2>/dev/null | grep -q '"queued": *"request"'; }
    wait_until "$g: the request is queued behind the check" 20 queued
    mark_log
    kill -CONT "$qemu"
    wait_log "$g: drift-watch: drifted" 60
    wait "$syncjob"
    out=$(cat "$WORK/sync.out")
    log "cli (exit $(cat "$WORK/sync.rc")): $out"
    grep -q "$g: request: \(synced\|approximate\)" <<< "$out" ||
        fail "the request was answered with another job's result: $out"
    assert_residual "$g" "sync request during a drift-watch check" "$out"
}

# <clock offset='variable' adjustment='3600' basis='utc'>: the guest runs an
# hour ahead on purpose. After a pause it is set to host + 3600 s, and the
# daemon says so.
case_variable_clock() {
    g=$(lab_up -n 1 --clock-adjust 3600)
    start_daemon
    wait_log "$g: reconcile:" 30
    pause_resume "$g" 3
    grep -q "target host +3600.000 s (clock offset='variable')" <<< "$WAIT_LINE" ||
        fail "the daemon does not say it kept the intended offset"
    INTENDED_US=3600000000
    assert_residual "$g" "pause 3 s of a guest at host + 3600 s"
}

# ---- proof by repetition ---------------------------------------------------
# One reading per case cannot tell a daemon that aims right from one that
# aims off by less than the set scatter. These cases repeat one event N times
# on one guest, read each result on the ruler after the daemon's verdict (and
# check its claim: assert_residual), and bound the *mean* residual, the bias:
# a working daemon's errors scatter around zero, however noisy the host.
# Quiet host (this lab, 100 cycles): median |residual| 50-60 us, mean within
# +/-30 us. A noisy CI host (sets scattering by ~300 us, the daemon stopping
# "approximate" at that jitter) read -379, -302, +154 us. The broken daemons
# are biased: without delay compensation ~-700...-1100 us, a one-set daemon
# -480 us median (-240...-1600), +2 ms aimed: >= +1 ms -- |mean| <= 300 us.
# The accuracy itself (median, worst) is printed for the benchmark
# (bench_report), not bounded here: it is a property of the host as much as
# of the daemon.
REPEAT_BIAS_MAX_US=${REPEAT_BIAS_MAX_US:-300}

RESIDUALS=()
# repeat_check GUEST WHAT: the claim and the ruler after the daemon's verdict
# (assert_residual: the single-reading bound and the claim), the reading kept.
repeat_check() {
    assert_residual "$1" "$2"
    local us
    us=$(sed -nE 's/^residual_us=([+-]?[0-9.]+) .*$/\1/p' <<< "$LAST_VERDICT")
    [ -n "$us" ] || fail "no ruler reading in: $LAST_VERDICT"
    RESIDUALS+=("$us")
}

# repeat_verdict: the mean residual (the bias) within REPEAT_BIAS_MAX_US; the
# median and worst |residual| logged and recorded for the benchmark.
repeat_verdict() {
    local max=$REPEAT_BIAS_MAX_US summary
    summary=$(python3 -c 'import statistics,sys
v = [float(x) for x in sys.argv[2:]]
a = [abs(x) for x in v]
mean = statistics.mean(v)
print("n=%d mean residual %+.1f us (bias bound %s), median |residual| %.1f us, worst %.1f us" % (
    len(v), mean, sys.argv[1], statistics.median(a), max(a)))
sys.exit(0 if abs(mean) <= float(sys.argv[1]) else 1)' "$max" "${RESIDUALS[@]}") ||
        fail "$CASE: $summary"
    log "$CASE: $summary"
    echo "RESULT case=$CASE $summary" >> "${E2E_RESULTS:-/dev/null}"
}

case_repeat_suspend_resume() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    for i in $(seq "${REPEAT_N:-10}"); do
        pause_resume "$g" 3
        repeat_check "$g" "suspend 3 s / resume, $i"
    done
    repeat_verdict
}

case_repeat_save_restore() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    for i in $(seq "${REPEAT_SAVE_N:-5}"); do
        mark_log
        lvirsh save "$g" "$WORK/$g.save" >/dev/null
        sleep 2 # time passes while saved
        lvirsh restore "$WORK/$g.save" >/dev/null
        rm -f "$WORK/$g.save"
        wait_log "$g: restored: (synced|approximate)" 60
        repeat_check "$g" "save / 2 s / restore, $i"
    done
    repeat_verdict
}

# The Debian guest (systemd, util-linux hwclock: each set takes up to ~1 s):
# ten suspend/resume cycles and their bias, then on the same boot a
# save/restore and a snapshot revert, each read early (DEBIAN_READ_AFTER_S)
# and at the verdict.
case_debian_repeat_suspend_resume() {
    debian_up
    RESIDUAL_MAX_US=$DEBIAN_RESIDUAL_MAX_US
    for i in $(seq "${REPEAT_N:-10}"); do
        mark_log
        lvirsh suspend "$g" >/dev/null
        sleep 3 # the pause is the scenario
        lvirsh resume "$g" >/dev/null
        wait_log "$g: resumed: (synced|approximate)" 60
        repeat_check "$g" "suspend 3 s / resume, $i"
    done
    repeat_verdict
    mark_log
    lvirsh save "$g" "$WORK/$g.save" >/dev/null
    sleep 3 # time passes while saved
    lvirsh restore "$WORK/$g.save" >/dev/null
    rm -f "$WORK/$g.save"
    debian_check "$g" "save / 3 s / restore" restored
    [ "$(count_log "$g: restored: failed")" -eq 0 ] || fail "restore sync failed"
    mark_log
    lvirsh snapshot-create-as "$g" snap1 >/dev/null
    sleep 5 # time passes after the snapshot
    lvirsh snapshot-revert "$g" snap1 >/dev/null
    debian_check "$g" "snapshot / 5 s / revert" snapshot-reverted
}

# ---- do no harm: fail closed, and the intended time on every path ----------

# A typo in a domain's policy (mode="of" for "off") leaves the guest alone:
# skipped with the reason, in the log, status, policy and metrics -- never
# synced on the defaults.
case_policy_typo() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh metadata "$g" --uri https://virt-clocksync.org/xmlns/policy/1 --key clocksync \
        --set '<policy mode="of"/>' --live >/dev/null
    wait_log "$g: policy-changed: skipped" 30
    mark_log
    lvirsh suspend "$g" >/dev/null
    sleep 3 # the pause the guest's clock falls behind by
    lvirsh resume "$g" >/dev/null
    wait_log "$g: resumed: skipped" 30
    grep -q "invalid value 'of' for 'mode'" <<< "$WAIT_LINE" || fail "no reason: $WAIT_LINE"
    assert_offset_beyond "$g" 2500000 # left alone: ~3 s behind
    { cli status "$g" || true; } | tee "$WORK/status.txt"
    grep -q "invalid value 'of' for 'mode'" "$WORK/status.txt" || fail "status does not say why"
    if cli policy "$g" > "$WORK/policy.txt" 2>&1; then fail "policy $g exits 0 on broken metadata"; fi
    grep -q "leaves this guest alone" "$WORK/policy.txt" || fail "policy does not say: $(cat "$WORK/policy.txt")"
    cli metrics | grep -q "^virt_clocksync_guest_config_problem{domain=\"$g\"} 1" ||
        fail "no config-problem metric"
    # --set cannot edit what it cannot read: before, it wrote attempts=3
    # alone, the typo gone, and the guest was synced at its next resume.
    if cli policy "$g" --set attempts=3 > "$WORK/set.txt" 2>&1; then
        fail "policy --set over a broken policy exits 0: $(cat "$WORK/set.txt")"
    fi
    lvirsh metadata "$g" --uri https://virt-clocksync.org/xmlns/policy/1 | grep -q 'mode="of"' ||
        fail "policy --set rewrote the broken policy: $(lvirsh metadata "$g" --uri https://virt-clocksync.org/xmlns/policy/1)"
}

# A guest undefined while it runs goes on, transient: its resume is still
# synced (before, UNDEFINED forgot it and cancelled that sync); destroyed,
# libvirt no longer has it, and neither does status (before, it stayed).
case_transient_forgotten() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    lvirsh undefine "$g" >/dev/null
    info=$(lvirsh dominfo "$g")
    grep -qE '^Persistent: +no' <<<"$info" || fail "$g is not transient after undefine: $info"
    pause_resume "$g" 2
    assert_residual "$g" "a resume after undefine"
    { cli status || true; } > "$WORK/status.txt"
    grep -q "^$g " "$WORK/status.txt" || fail "status lost $g while it runs: $(cat "$WORK/status.txt")"
    lvirsh destroy "$g" >/dev/null
    gone() { { cli status || true; } > "$WORK/status.txt" && ! grep -q "^$g " "$WORK/status.txt"; }
    wait_until "status no longer lists the destroyed transient $g" 30 gone
}

# define_policy GUEST POLICY-ELEMENT: what virt-manager's XML editor does --
# the persistent definition, with our metadata element replaced, defined
# again (virsh define) while the guest runs.
define_policy() {
    local g=$1 policy=$2
    lvirsh dumpxml --inactive "$g" > "$WORK/defined.xml"
    python3 - "$WORK/defined.xml" "$policy" <<'PY'
import re, sys
path, policy = sys.argv[1], sys.argv[2]
xml = re.sub(r"\s*<metadata>.*?</metadata>", "", open(path).read(), flags=re.S)
element = policy.replace("<policy", '<clocksync:policy xmlns:clocksync="https://virt-clocksync.org/xmlns/policy/1"', 1)
xml = xml.replace("</name>", "</name>\n  <metadata>\n    " + element + "\n  </metadata>", 1)
open(path, "w").write(xml)
PY
    chmod 0644 "$WORK/defined.xml"
    lvirsh define "$WORK/defined.xml" >/dev/null
}

# virt-manager's route: the policy edited in the persistent definition of a
# running guest takes effect at once (the daemon makes it the live one:
# policy shows it, a resume is left alone); a difference the daemon did not
# see being made (defined while it was stopped) stays pending until the next
# boot, and status and policy say so.
case_policy_defined() {
    g=$(lab_up -n 1)
    start_daemon
    wait_log "$g: reconcile:" 30
    mark_log
    define_policy "$g" '<policy mode="off"/>'
    wait_log "$g: policy-changed: skipped" 30
    cli policy "$g" | tee "$WORK/policy.txt"
    grep -qE "^mode +off$" "$WORK/policy.txt" || fail "the defined policy is not the live one"
    ! grep -q "^next boot" "$WORK/policy.txt" || fail "policy says pending after it was applied"
    mark_log
    lvirsh suspend "$g" >/dev/null
    sleep 3 # the pause the guest's clock falls behind by
    lvirsh resume "$g" >/dev/null
    wait_log "$g: resumed: skipped" 30
    assert_offset_beyond "$g" 2500000 # left alone: ~3 s behind
    stop_daemon
    define_policy "$g" '<policy mode="host" tolerance-us="5000"/>'
    start_daemon
    wait_log "$g: reconcile: skipped" 30 # the live policy (mode=off) rules until the next boot
    { cli status "$g" || true; } | tee "$WORK/status.txt"
    grep -q "pending until the next boot" "$WORK/status.txt" || fail "status does not say a policy is pending"
    cli policy "$g" | tee "$WORK/policy.txt"
    grep -qE '^next boot .*tolerance-us="5000"' "$WORK/policy.txt" || fail "policy does not show the pending one"
    grep -qE "^mode +off$" "$WORK/policy.txt" || fail "the pending policy was applied"
}

# The CLI decides as the daemon does: a guest at host + 3600 s on purpose is
# synced there by a direct `virt-clocksync sync`, and with a daemon running
# a sync with --attempts goes through the daemon (no second sync beside it).
case_intended_offset_cli() {
    g=$(lab_up -n 1 --clock-adjust 3600)
    INTENDED_US=3600000000
    lvirsh suspend "$g" >/dev/null
    sleep 3 # the pause the guest's clock falls behind by
    lvirsh resume "$g" >/dev/null
    out=$(cli sync "$g") || fail "virt-clocksync sync failed: $out"
    log "$out"
    grep -q "target host +3600.000 s" <<< "$out" || fail "the CLI does not keep the intended offset: $out"
    assert_residual "$g" "a direct virt-clocksync sync of a guest at host + 3600 s" "$out"
    # check-guest reads it against the same intended time: in sync, exit 0
    # (before: +3600 s from host UTC, exit 3 for a correct guest).
    out=$(cli check-guest "$g") || fail "check-guest says a correct guest at host + 3600 s is not: $out"
    grep -qE "^offset +[+-][0-9.]+ (us|ms) \(from the intended time" <<< "$out" ||
        fail "check-guest does not read the guest against its intended time: $out"
    start_daemon
    wait_log "$g: reconcile:" 30
    lvirsh suspend "$g" >/dev/null
    sleep 3
    lvirsh resume "$g" >/dev/null
    out=$(cli sync --attempts 5 "$g") || fail "virt-clocksync sync --attempts failed: $out"
    log "$out"
    grep -q "via virt-clocksyncd" <<< "$out" || fail "--attempts bypassed the running daemon: $out"
    assert_residual "$g" "virt-clocksync sync --attempts 5 with a daemon running" "$out"
}

# A negative adjustment is kept as a positive one is.
case_negative_adjustment() {
    g=$(lab_up -n 1 --clock-adjust -7200)
    INTENDED_US=-7200000000
    start_daemon
    wait_log "$g: reconcile:" 30
    pause_resume "$g" 3
    grep -q "target host -7200.000 s" <<< "$WAIT_LINE" || fail "the daemon does not keep -7200 s"
    assert_residual "$g" "pause 3 s of a guest at host - 7200 s"
}

# The guest's qemu-ga stops answering (SIGSTOP inside the guest, as under
# heavy guest load) across a resume, for longer than the agent timeout:
# libvirt says "not available for now", no agent event follows. The daemon
# retries on its own and the guest ends verified once the agent answers.
case_agent_stall() {
    g=$(lab_up -n 1)
    start_daemon "agent-timeout-seconds = 3"
    wait_log "$g: reconcile:" 30
    mark_log
    # qemu-ga runs the command and answers; 1 s later the command stops it
    # (its parent) for 15 s of guest time.
    lvirsh qemu-agent-command "$g" '{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","sleep 1; kill -STOP $PPID; sleep 15; kill -CONT $PPID"]}}' >/dev/null
    sleep 2 # past the guest's "sleep 1": the agent is stopped now
    lvirsh suspend "$g" >/dev/null
    sleep 3 # the pause the guest's clock falls behind by
    lvirsh resume "$g" >/dev/null
    wait_log "$g: resumed: (synced|approximate|failed|cancelled|skipped)" 60
    grep -qE "$g: resumed: (synced|approximate)" <<< "$WAIT_LINE" || fail "not synced: $WAIT_LINE"
    assert_residual "$g" "a resume with the guest agent stopped for 15 s"
}

# mode=off set while a sync is in flight stops it before its next set
# (docs/design.md §3: a policy change cancels the job, checked before every
# set, and re-runs its trigger under the new policy). The guest is made 300 s
# wrong (on-rtc-change=no: the daemon leaves it until asked; the RTC change
# that makes is seen skipped first, so no other job is the one in flight).
# Its agent is stopped (SIGSTOP) for 4 s, under libvirt's 5 s agent
# timeout, and a request is made meanwhile: its job waits on the agent's
# first answer while the operator turns the guest off. The request must end
# cancelled, saying the tracker stopped it, and the ruler still read the
# guest 300 s off: a daemon that set it anyway is caught there (planted:
# the mutation row sim-policy-inflight).
agent_silent() { ! lvirsh qemu-agent-command "$1" '{"execute":"guest-ping"}' --timeout 1 >/dev/null 2>&1; }
syncing() { cli status "$1" | grep -q syncing; }
case_policy_off_in_flight() {
    g=$(lab_up -n 1)
    start_daemon "[sync]" "on-rtc-change = no"
    wait_log "$g: reconcile:" 30
    mark_log
    lvirsh domtime "$g" --time $(( $(date +%s) - 300 )) >/dev/null
    wait_log "$g: rtc-changed: skipped" 30
    # qemu-ga answers the guest-exec first, then its child stops it.
    lvirsh qemu-agent-command "$g" '{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","sleep 0.2; kill -STOP $PPID; sleep 4; kill -CONT $PPID"]}}' >/dev/null
    wait_until "$g: its agent is stopped" 10 agent_silent "$g"
    cli sync "$g" --samples 1000 > "$WORK/sync.out" 2>&1 &
    local sync_pid=$!
    wait_until "$g: its request is in flight" 10 syncing "$g"
    cli policy "$g" --set mode=off >/dev/null
    wait "$sync_pid" || true
    log "cli: $(cat "$WORK/sync.out")"
    # The catch: a daemon that set the guest after mode=off reads ~0 here.
    assert_offset_beyond "$g" 250000000 # left alone: ~300 s behind
    grep -q "cancelled.*stopped before its next set" "$WORK/sync.out" ||
        fail "the request's sync was not stopped in flight by mode=off (timing: see the log)"
}

# The operator's habit, virsh domtime --now (whole seconds: ~0.5 s off), is
# refined by the daemon (RTC_CHANGE, trigger rtc-changed); its own sets, which
# cause the same event, do not start another sync.
case_rtc_changed() {
    g=$(lab_up -n 1)
    # Set the guest right before the daemon starts (the CLI, directly): its
    # reconcile then usually sets nothing, so no set of its own is recent
    # when the operator acts (on a noisy host the CLI's own sync may end
    # outside the daemon's in-sync band and the reconcile sets again: an RTC
    # change just after is then judged by its timing).
    cli sync "$g" >/dev/null
    start_daemon
    wait_log "$g: reconcile: (in-sync|synced|approximate)" 30
    mark_log
    t0=$(date +%s.%N)
    lvirsh domtime "$g" --now >/dev/null
    wait_log "$g: rtc-changed: (synced|approximate)" 30
    log "refined $(echo "$(date +%s.%N) - $t0" | bc) s after virsh domtime --now returned"
    assert_residual "$g" "virsh domtime --now, then the daemon's refinement"
    # Our own sets made RTC writes too: they started no further sync. A
    # request now (usually a sync that sets nothing: the refinement left
    # the guest in-sync) is the next result, not another rtc-changed one.
    out=$(cli sync "$g")
    grep -qE "$g: request: (in-sync|synced|approximate)" <<< "$out" || fail "unexpected: $out"
    [ "$(tail -n "+$((LOG_MARK + 1))" "$DAEMON_LOG" | grep -c "$g: rtc-changed:")" -eq 1 ] ||
        fail "the daemon's own sets triggered rtc-changed syncs"
}

# The demo (README's first command) leaves nothing behind, however it ends:
# run to the end, interrupted as by Ctrl-C (SIGINT to its process group), and
# with its daemon killed under it.
case_demo_cleanup() {
    local user
    user=$($LAB user)
    # (without virsh: it would start a session libvirtd itself)
    leftovers() {
        local left="" home
        home=$(getent passwd "$user" | cut -d: -f6)
        # (zombies are not counted: killed, waiting for PID 1 to reap them)
        local procs
        procs=$(ps -u "$user" -o stat=,pid=,comm= 2>/dev/null | awk '$1 !~ /^Z/ {print $2 "/" $3}' | tr '\n' ' ')
        [ -z "$procs" ] || left+=" lab-processes($procs)"
        ! compgen -G "$home/.config/libvirt/qemu/clocklab-*.xml" >/dev/null || left+=" guest-definitions"
        ! compgen -G "/tmp/virt-clocksync-demo.*" >/dev/null || left+=" /tmp/virt-clocksync-demo.*"
        ! compgen -G "/tmp/virt-clocksyncd.*.log" >/dev/null || left+=" /tmp/virt-clocksyncd.*.log"
        [ ! -e /tmp/clocklab ] || left+=" /tmp/clocklab"
        echo "$left"
    }
    # demo: execs (run it in a subshell or in the background), so that its pid
    # is the demo's own: a new session, SIGINT at its default as in a terminal
    demo() { DEMO_BIN="$BIN" exec python3 -c 'import os,signal,sys
signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp("bash", ["bash"] + sys.argv[1:])' \
        "$REPO/contrib/demo.sh" > "$WORK/demo.out" 2>&1; }
    # until_line PATTERN: waits (event-driven) for the running demo to print PATTERN
    until_line() { timeout 120 grep -q -m1 -E "$1" <(tail --pid="$demo_pid" -n +1 -f "$WORK/demo.out") ||
        { cat "$WORK/demo.out"; fail "the demo did not print '$1'"; }; }

    (demo) || { cat "$WORK/demo.out"; fail "the demo failed"; }
    grep -E "virt-clocksyncd +[-+]" "$WORK/demo.out" || fail "the demo printed no result"
    [ -z "$(leftovers)" ] || fail "after a full demo run, left behind:$(leftovers)"
    log "full run: nothing left behind"

    demo & demo_pid=$!
    until_line "^== 2\."
    kill -INT -- "-$demo_pid"
    rc=0; wait "$demo_pid" || rc=$?
    [ "$rc" -ne 0 ] || fail "the interrupted demo exited 0"
    [ -z "$(leftovers)" ] || fail "after Ctrl-C, left behind:$(leftovers)"
    log "Ctrl-C (exit $rc): nothing left behind"

    demo & demo_pid=$!
    until_line "daemon up:"
    pkill -KILL -u "$user" -x virt-clocksyncd
    rc=0; wait "$demo_pid" || rc=$?
    [ "$rc" -ne 0 ] || fail "the demo whose daemon died exited 0"
    [ -z "$(leftovers)" ] || fail "after the daemon died, left behind:$(leftovers)"
    log "daemon killed (exit $rc): nothing left behind"
}

"case_$CASE"
log "case $CASE passed"
