#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Distribution checks, as root on Debian 12 (run by contrib/run-tests.sh):
#  1. the README's "Install on your host" commands, run as written: the Debian
#     source and binary packages build (their unit tests run in the build) and
#     are lintian-clean (errors and warnings; overrides carry their reason),
#     and install;
#  2. the installed package: its daemon reads the installed config
#     (--check-config), the system and user units pass systemd-analyze verify
#     (the system unit's security exposure is printed), the installed daemon
#     and CLI run against libvirt's test driver and their metrics pass
#     promtool; then the README's check, enable and see-it-work commands on a
#     lab guest under the system libvirtd, read on the ruler;
#  3. dpkg -r leaves no running process, dpkg --purge no file;
#  4. the RPM builds (rpmbuild fails on a %files list that does not match the
#     install) and rpmlint passes on the spec;
#  5. the monitoring rules pass promtool check/test, the dashboard is JSON.
# PACKAGING_LANE=systemd (contrib/ci/trixie.sh, inside a container booted
# with systemd as PID 1): 1-3 only, with the real systemctl and journal, and
# what only systemd shows: the unit active, its journal fields, a reload
# with a good and with a broken config, the sandbox's exposure, stop. The
# Debian 12 run checks lint, RPM and monitoring.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "== packaging: $*"; }
fail() { echo "packaging: $*" >&2; exit 1; }
lane=${PACKAGING_LANE:-full}
promtool=/var/cache/virt-clocksync/promtool/usr/bin/promtool # install-deps.sh all puts it there
if [ "$lane" = systemd ]; then
    [ -d /run/systemd/system ] || fail "PACKAGING_LANE=systemd: systemd is not PID 1 here"
else
    command -v lintian >/dev/null && [ -x "$promtool" ] || bash contrib/install-deps.sh all
fi
promtool() { if [ -x "$promtool" ]; then "$promtool" "$@"; else echo "(no promtool here: not checked)"; fi; }

# The README's "Install on your host" section is run as it is written: its
# sh blocks in order, VM being a lab guest. Where systemd is not PID 1 (a CI
# container) systemctl and journalctl are stand-ins that run the installed
# unit's ExecStart and show its log; as root, sudo is a no-op.
readme_block() { # readme_block N: the Nth sh block of the install section
    awk -v n="$1" '/^## Install on your host/ {on = 1; next} on && /^## / {exit}
        on && /^```sh$/ {k++; inblock = (k == n); next} inblock && /^```$/ {inblock = 0; next}
        inblock' README.md
}
readme_run() { # readme_run N [VM]: runs block N, VM replaced by the guest
    local shims="" block
    block=$(readme_block "$1" | sed "s/\bVM\b/${2:-VM}/g")
    [ -n "$block" ] || fail "README: no sh block $1 in the install section"
    [ "$(id -u)" -ne 0 ] || shims+='sudo() { "$@"; }'$'\n' # root: sudo is a no-op (or missing)
    # check-host/check-guest exit 3 for a finding (the host not NTP synced,
    # a guest off before the daemon runs): what they are for, not a failure.
    shims+='virt-clocksync() { local rc=0; command virt-clocksync "$@" || rc=$?
        case "$1:$rc" in check-host:3|check-guest:3) echo "(exit 3: a finding, shown above)"; return 0 ;; esac
        return $rc; }'$'\n'
    if [ ! -d /run/systemd/system ]; then
        shims+="systemctl() { [ \"\$*\" = 'enable --now virt-clocksyncd' ] || return 1
            \$(sed -n 's/^ExecStart=//p' \"$unit\") 2>>\"$work/journal.log\" & echo \$! > \"$work/service.pid\"; }"$'\n'
        shims+="journalctl() { cat \"$work/journal.log\"; }"$'\n'
    fi
    echo "+ README block $1:"
    sed 's/^/    /' <<<"$block"
    bash -euo pipefail -c "$shims$block"
}

work=$(mktemp -d)
pid=
unit=/lib/systemd/system/virt-clocksyncd.service
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    [ ! -f "$work/service.pid" ] || kill "$(cat "$work/service.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

say "README install, block 1: build dependencies, the Debian packages, install"
# From nothing: an earlier build's package (say, one that put the unit under
# /usr/lib) is purged first, so what is checked is this package's install.
! dpkg -s virt-clocksync >/dev/null 2>&1 || dpkg --purge virt-clocksync >/dev/null
# The unit tests ran in this build's ctest stage (the README's package
# build runs them too, a user's only check; here a repeat): not again. The
# systemd lane's package build is that release's only build: its unit tests
# run in it, and its warnings are errors.
if [ "$lane" = systemd ]; then
    CLOCKSYNC_WERROR=1 readme_run 1
else
    DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck} readme_run 1
    lintian --fail-on error,warning --info build/deb/*.changes
fi

say "installed package"
# Debian 13 finished the /usr merge: a package file under the aliased /lib
# is one dpkg can lose track of (and warns of on removal).
if [ "$lane" = systemd ] && dpkg -L virt-clocksync | grep -q '^/lib/'; then
    fail "the package ships files under the aliased /lib: $(dpkg -L virt-clocksync | grep '^/lib/' | tr '\n' ' ')"
fi
[ -f /etc/virt-clocksync/virt-clocksyncd.conf ] || fail "no installed config"
checked=$(/usr/sbin/virt-clocksyncd --check-config)
echo "$checked"
grep -q '^uri = qemu:///system$' <<<"$checked" || fail "--check-config did not read the installed config"
systemd-analyze verify "$unit"
systemd-analyze security --offline=yes "$unit" | tail -1
user_unit=/usr/lib/systemd/user/virt-clocksyncd.service
mkdir -m 0700 "$work/xdg"
XDG_RUNTIME_DIR="$work/xdg" systemd-analyze --user verify "$user_unit"
grep -q "^ExecStart=/usr/sbin/virt-clocksyncd --uri qemu:///session$" "$user_unit" ||
    fail "the user unit does not run the session daemon"
[ ! -e /etc/systemd/user/default.target.wants/virt-clocksyncd.service ] ||
    fail "the user unit was enabled for every user"
printf '[daemon]\nuri = test:///default\ncontrol-socket = %s/control.sock\n' "$work" >"$work/test.conf"
/usr/sbin/virt-clocksyncd --config "$work/test.conf" 2>"$work/daemon.log" &
pid=$!
cli() { /usr/bin/virt-clocksync --control "$work/control.sock" "$@"; }
deadline=$((SECONDS + 30))
until cli status 2>/dev/null | grep -q '^test '; do # reconciled: the test driver's domain
    [ $SECONDS -lt $deadline ] || { cat "$work/daemon.log"; fail "the installed daemon did not reconcile"; }
    kill -0 "$pid" || { cat "$work/daemon.log"; fail "the installed daemon exited"; }
    sleep 0.2 # polling a condition, with the deadline above
done
cli status
cli metrics >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
kill "$pid"
wait "$pid" || true
pid=

say "the installed daemon, its installed config, the system libvirtd, a lab guest"
export LAB_SYSTEM=1
lab="bash contrib/lab/lab.sh"
$lab system start
g=$($lab up -n 1)
labdown() { $lab down >/dev/null 2>&1 || true; }
trap 'cleanup; labdown' EXIT
say "README install, block 2: check the host and a guest, enable the service"
readme_run 2 "$g"
[ -d /run/systemd/system ] || { [ -f "$work/service.pid" ] || fail "the service was not started"; pid=$(cat "$work/service.pid"); }
wait_status() { # wait_status PATTERN: the installed CLI's status shows it (deadline 60 s)
    local deadline=$((SECONDS + 60))
    until /usr/bin/virt-clocksync status "$g" 2>/dev/null | grep -qE "$1"; do
        [ $SECONDS -lt $deadline ] || { cat "$work/journal.log" 2>/dev/null; fail "status never showed '$1'"; }
        sleep 0.2 # polling the CLI, bounded by the deadline
    done
}
wait_status "^$g .*reconcile"

say "README install, block 3: see it work"
readme_run 3 "$g"
wait_status "^$g .*resumed +(synced|approximate)"
# The claim checked here is the installed package's: the guest verified within
# the installed config's tolerance (1000 us), on the independent ruler. The
# 300 us accuracy bound is the e2e suite's (system mode included).
/usr/bin/virt-clocksync status "$g"
reading=$(python3 contrib/ruler/ruler.py read "$($lab ref "$g")" --samples 30)
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); us=r["offset_ns"]/1000
print("ruler: %s after the resume: %+.1f us (+/-%.1f us)" % (sys.argv[2], us, r["uncertainty_ns"]/1000))
sys.exit(0 if abs(us) <= 1000 else 1)' "$reading" "$g" || fail "the installed daemon left $g beyond 1 ms"
if [ -d /run/systemd/system ]; then
    say "under systemd: the unit, its journal, reload (good, broken), the sandbox"
    systemctl is-active --quiet virt-clocksyncd || fail "virt-clocksyncd is not active"
    journal=$(journalctl -u virt-clocksyncd DOMAIN="$g" --no-pager -o cat)
    grep -q "$g: resumed: " <<<"$journal" || fail "no journal line with DOMAIN=$g for the resume: $journal"
    mainpid=$(systemctl show -p MainPID --value virt-clocksyncd)
    since=$(date '+%Y-%m-%d %H:%M:%S')
    dropin=/etc/virt-clocksync/virt-clocksyncd.conf.d/50-lane.conf
    # Whatever happens: no drop-in, no service left behind.
    trap 'rm -f "$dropin"; systemctl disable --now virt-clocksyncd >/dev/null 2>&1 || true; cleanup; labdown' EXIT
    mkdir -p "$(dirname "$dropin")"
    printf '[sync]\ntolerance-us = 900\n' >"$dropin"
    systemctl reload virt-clocksyncd || fail "reload of a good config failed"
    # The daemon reads the config when it handles the signal, after
    # systemctl returns: its journal line says when (deadline 30 s).
    deadline=$((SECONDS + 30))
    until journalctl -u virt-clocksyncd --since "$since" --no-pager -o cat | grep -q "reloaded the config: 1 change"; do
        [ $SECONDS -lt $deadline ] || fail "the good reload was not applied"
        sleep 0.2 # polling the journal, bounded by the deadline
    done
    printf '[sync]\ntolerance-us = banana\n' >"$dropin"
    ! systemctl reload virt-clocksyncd 2>/dev/null || fail "reload of a broken config succeeded"
    rm -f "$dropin"
    [ "$(systemctl show -p MainPID --value virt-clocksyncd)" = "$mainpid" ] &&
        systemctl is-active --quiet virt-clocksyncd || fail "the daemon did not survive the reloads"
    # A broken config fails ExecReload's --check-config: the running daemon
    # is never signalled, so it logs one reload only.
    journal=$(journalctl -u virt-clocksyncd --since "$since" --no-pager -o cat)
    echo "$journal" | tail -5
    [ "$(grep -c "reloaded the config" <<<"$journal")" -eq 1 ] && ! grep -q "not reloaded" <<<"$journal" ||
        fail "the broken config reached the daemon"
    systemd-analyze security virt-clocksyncd --no-pager | tail -1
    systemctl disable --now virt-clocksyncd
    ! systemctl is-active --quiet virt-clocksyncd || fail "virt-clocksyncd still active after stop"
else
    kill "$pid"
    timeout 30 tail --pid="$pid" -f /dev/null || fail "the installed daemon did not stop on SIGTERM"
    pid=
fi
labdown
$lab system stop
unset LAB_SYSTEM
# Under systemd the package's prerm stops the service before removal (here,
# without systemd, the daemon above was stopped by hand): check it says so.
dpkg-deb -e build/deb/virt-clocksync_*.deb "$work/control"
grep -q "deb-systemd-invoke stop .*virt-clocksyncd.service" "$work/control/prerm" ||
    fail "the package's prerm does not stop the service"
grep -q "_dh_action=restart" "$work/control/postinst" ||
    fail "the package's postinst does not restart an enabled service on upgrade"

say "remove and purge"
dpkg -r virt-clocksync >/dev/null
! pgrep -x virt-clocksyncd >/dev/null || fail "a virt-clocksyncd still runs after dpkg -r"
dpkg --purge virt-clocksync >/dev/null
[ ! -e /etc/virt-clocksync ] || fail "/etc/virt-clocksync left behind by --purge"
for f in /usr/sbin/virt-clocksyncd /usr/bin/virt-clocksync "$unit"; do
    [ ! -e "$f" ] || fail "$f left behind"
done

if [ "$lane" = systemd ]; then
    say "ok (systemd lane)"
    exit 0
fi

say "RPM"
# Without %check here: the Debian build above ran the same unit tests.
bash contrib/build-rpm.sh --without check >/dev/null
rpmlint -r contrib/virt-clocksync.rpmlintrc contrib/virt-clocksync.spec | tee "$work/rpmlint.txt"
grep -q ' 0 errors, 0 warnings' "$work/rpmlint.txt" || fail "rpmlint: errors or warnings (filters need a reason in contrib/virt-clocksync.rpmlintrc)"

say "monitoring"
promtool check rules contrib/monitoring/virt-clocksync.rules.yml
(cd contrib/monitoring && promtool test rules virt-clocksync.rules.test.yml)
python3 -m json.tool contrib/monitoring/virt-clocksync.dashboard.json >/dev/null
say "ok"
