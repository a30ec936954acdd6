#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Mutation check: builds deliberately broken daemons in a temporary copy of the
# tree and runs, against each, the tests meant to catch that bug -- unit or
# integration tests (fakes, no guest) and e2e cases on lab guests. Every
# mutant must make one of them fail (gating); the unbroken daemon (the
# control row) must pass them (its unit rows' all, and the repeated case on
# this build: see the control row), or the table proves nothing.
#
#   a      no delay compensation: the guest is set to host "now"
#   b      no verify, no re-correct: one set, then "synced" is reported
#   c      aims off by a constant: +2 ms in every time sent (the delay model
#          learns back at most the real set delay: a delay cannot be negative)
#   b-liar like b, and it fabricates a verified result (the pre-set
#          measurement's uncertainty, offset 0): its claim is within its own
#          uncertainty of the ruler, so one reading catches it only by
#          chance; its "synced" beyond 300 us and the repeated case's bias
#          (it lands -140...-2100 us) do.
#   last-sample    the measurement keeps the last sample, not the one with the
#                  shortest round trip
#   few-samples    no extra samples on a busy path
#   drop-intended  a variable-clock guest is synced to host UTC
#   timeout-unavailable  libvirt's "agent not available for now" (connected,
#                  did not answer) read as "not connected": parked for an
#                  event that never comes, no retry
#   sim-localtime        basis='localtime' aimed at UTC + N + the host's offset
#   sim-keep-vanished    domains libvirt no longer has are never forgotten
#   sim-policy-inflight  a policy change does not stop the sync in flight
#   sim-own-late         (seeds 1001-3000: clocksync-sim-deep)
#                        a variable clock's live adjustment followed although
#                        a set of ours explains it (landed late, or rounded)
#   sim-rtc-inflight     a guest's own RTC change does not stop our sync in
#                        flight (it sets the guest back to the old target)
#   sim-metrics-forget   a forgotten domain's metric series kept (a domain
#                        whose series outlives it keeps an alert firing)
# (the sim- rows: bugs the simulation found, planted back, and one it must
# find; it must catch each by the invariant meant for it: 2, 5, 1, 2, 2, 6.)
#   host-step      a step of the host's clock during a measurement not seen
#                  (taken for a tick thousands of seconds long; found by the
#                  simulation at seed 1459, outside the test command's seeds,
#                  so caught by its unit test)
#
# An e2e list stops at the first case that catches the mutant (the control
# runs all of its own); the repeated case comes first, so a catch there says in
# how many of its cycles. Usage (as root, after a build of the default
# preset): bash contrib/ci/mutants.sh. Prints the table; exits 1 if a mutant
# is missed or the control fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

tmp=$(mktemp -d /tmp/clocksync-mutants.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The tracked files as they are in the work tree (uncommitted edits included).
git ls-files -z | xargs -0 cp --parents -t "$tmp"
mkdir "$tmp/orig"
sources=(agent/core/syncengine.cpp agent/core/measure.cpp agent/core/syncplan.cpp qga/libvirtagent.cpp
         agent/core/domainxml.cpp agent/daemon/daemon.cpp agent/core/domaintracker.cpp
         agent/core/scheduler.cpp)
for f in "${sources[@]}"; do cp --parents "$f" "$tmp/orig"; done

# mutate FILE SED-EXPRESSION: every source as it was, then one deliberate bug;
# fails if the expression no longer matches the code (the mutant would
# silently be the original).
mutate() {
    for f in "${sources[@]}"; do cp "$tmp/orig/$f" "$tmp/$f"; done
    [ -n "$1" ] || return 0
    sed -i "$2" "$tmp/$1"
    if cmp -s "$tmp/$1" "$tmp/orig/$1"; then
        echo "mutants: a mutant no longer applies to $1 ($2): update this script" >&2
        exit 1
    fi
}

engine=agent/core/syncengine.cpp
order=()
declare -A file expr what units cases expect
# add NAME FILE SED-EXPRESSION BROKEN-HOW UNIT-TESTS(ctest regex) E2E-CASES
add() {
    order+=("$1")
    file[$1]=$2 expr[$1]=$3 what[$1]=$4 units[$1]=$5 cases[$1]=$6
}
accuracy="repeat_suspend_resume save_restore wrong_clock_request"
# The control row runs every unit row's tests and the repeated case (whose
# bias and claim assertions catch the accuracy mutants) on this release
# build; the other cases passed in the test stage moments before, on the
# same source (Debug): not run twice.
add control "" "" "the daemon as it is (must pass)" "tst_syncengine|tst_refine|tst_measure|tst_tracker|tst_testdriver|clocksync-sim|clocksync-sim-deep" \
    "repeat_suspend_resume"
add a "$engine" 's|m_agent.setTime(nextSetTime(m_clock.realtimeNs(), d))|m_agent.setTime(m_clock.realtimeNs())|' \
    "no delay compensation (sets host now)" "" "$accuracy"
add b "$engine" 's|m_lastSetError.reset(); // recovered: no longer the cause of anything|m_lastSetError.reset(); return finish(Outcome::Synced);|' \
    "no verify/re-correct (one set, reports synced)" "" "$accuracy"
add c "$engine" 's|m_agent.setTime(nextSetTime(m_clock.realtimeNs(), d))|m_agent.setTime(nextSetTime(m_clock.realtimeNs(), d) + 2000000)|' \
    "constant +2 ms in the time sent" "" "$accuracy"
add b-liar "$engine" 's|m_lastSetError.reset(); // recovered: no longer the cause of anything|m_lastSetError.reset(); m_result.after = m_last; m_result.after->offsetNs = 0; return finish(Outcome::Synced);|' \
    "b, and claims 'verified 0 us'" "" "$accuracy"
add last-sample agent/core/measure.cpp 's|const qga::TimeSample\* best = qga::minRttSample(taken);|const qga::TimeSample* best = \&taken.back();|' \
    "the last sample, not the min-RTT one" "tst_measure" ""
add few-samples agent/core/measure.cpp 's#(quiet || i >= samples \* 3)#(quiet || i >= samples)#' \
    "no extra samples on a busy path" "tst_measure" ""
add drop-intended agent/core/syncplan.cpp 's|    if (target.shiftNs == 0)|    if (true)|' \
    "intended offset dropped (host UTC)" "tst_tracker" "variable_clock"
add timeout-unavailable qga/libvirtagent.cpp 's|return ErrorKind::Timeout; // connected, did not answer in time|return ErrorKind::AgentUnavailable;|' \
    "agent timeout read as 'not connected'" "tst_testdriver" "agent_stall"
# A simulation row must be caught by the invariant meant for it, not any.
expect[sim-localtime]="invariant 2" expect[sim-keep-vanished]="invariant 5"
expect[sim-policy-inflight]="invariant 1" expect[sim-own-late]="invariant 2"
expect[sim-rtc-inflight]="invariant 2" expect[host-step]="hostClockStepIsMeasuredPast"
expect[sim-metrics-forget]="invariant 6"
add sim-localtime agent/core/domainxml.cpp 's|        live.adjustmentNs -= inactive.rtcAheadNs;|        {}|' \
    "basis=localtime aimed at UTC+N+offset" "clocksync-sim" ""
add sim-keep-vanished agent/daemon/daemon.cpp 's|^                forgetDomain(s.uuid, s.name);$|                {}|' \
    "vanished domains kept for ever" "clocksync-sim" ""
add sim-policy-inflight agent/core/domaintracker.cpp 's|^        e.cancelled->store(true);$|        {}|' \
    "policy change leaves the sync in flight" "clocksync-sim" "policy_off_in_flight"
add sim-own-late agent/core/scheduler.cpp 's|^    if (m_ownSets->explains(m_job.uuid, |    if (false \&\& m_ownSets->explains(m_job.uuid, |' \
    "our own late/rounded RTC write followed" "clocksync-sim|clocksync-sim-deep" ""
add sim-rtc-inflight agent/core/domaintracker.cpp 's|^        rethink(uuid, name, Trigger::RtcChanged);$|        {}|' \
    "guest's own RTC change: sync in flight kept" "clocksync-sim" ""
add sim-metrics-forget agent/daemon/daemon.cpp 's|^    m_reporter.forget(uuid, name);$|    (void)name;|' \
    "a forgotten domain's metric series kept" "clocksync-sim" ""
add host-step agent/core/measure.cpp 's|^        if (hostClock) {$|        if (false) {|' \
    "host clock step in a measurement unseen" "tst_measure" ""

# The targets a row needs: the daemon and CLI for e2e cases, its unit tests.
# (A unit row names ctest tests; each is built by the target of its name,
# but clocksync-sim-deep is clocksync-sim run on other seeds.)
targets() {
    local t=() u
    [ -z "${cases[$1]}" ] || t+=(virt-clocksyncd virt-clocksync)
    for u in ${units[$1]//|/ }; do t+=("${u%-deep}"); done
    echo "${t[@]}"
}

# unit NAME: the row's unit tests; prints the test functions that failed.
unit() {
    [ -n "${units[$1]}" ] || return 0
    ctest --test-dir "$tmp/build" --no-tests=error -R "^(${units[$1]})\$" --output-on-failure > "$tmp/$1-unit.log" 2>&1 && return 0
    # A failure names its assertion (a QtTest function, an invariant); one
    # that names none (a crash, a timeout) is said as such, not hidden.
    local named
    named=$(grep -oE '^FAIL!  : [A-Za-z]+::[A-Za-z0-9_]+|FAILED seed [0-9]+: invariant [0-9]' "$tmp/$1-unit.log" |
        sed 's/^FAIL!  : //' | sort -u | head -3 | tr '\n' ' ' || true)
    echo "${named:-a failure naming no assertion: $(grep -m1 -oE '\*\*\*[A-Za-z ]+.*' "$tmp/$1-unit.log" || echo unknown)}"
}

# why CASE-LOG: the e2e assertion in short: the event, the ruler, the reason.
why() {
    python3 -c 'import re,sys
t = open(sys.argv[1], errors="replace").read()
m = re.search(r"ASSERTION FAILED: (.*)", t)
if not m:
    sys.exit(print("no assertion (see its log)"))
a = m.group(1)
r = re.search(r"(ruler [+-][0-9.]+ us)", a)
print(("%s; %s" % (a.split(": ruler")[0], r.group(1)) if r else a.split(";")[0])[:110] +
      ("; " + a.rsplit("; ", 1)[-1] if r else ""))' "$1"
}

# e2e NAME: the row's e2e cases, a mutant's until the first that fails;
# prints the failed ones with what failed.
e2e() {
    local c
    for c in ${cases[$1]}; do
        if CLOCKSYNC_BIN="$tmp/build/agent" bash "$repo/tests/e2e/cases.sh" "$c" > "$tmp/$1-$c.log" 2>&1; then
            echo "   $c: passed" >&2
        else
            echo "   $c: FAILED: $(grep -m1 -E 'ASSERTION FAILED' "$tmp/$1-$c.log" | cut -c1-220)" >&2
            printf '%s (%s) ' "$c" "$(why "$tmp/$1-$c.log")"
            [ "$1" = control ] || return 0
        fi
    done
}

# The release preset's settings (RelWithDebInfo, -Werror), but what a
# mutant leaves unused (a parameter, a variable, a function) is no error: a
# mutant that does not build would be no mutant at all.
cmake -S "$tmp" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOCKSYNC_WERROR=ON \
    "-DCMAKE_CXX_FLAGS=-Wno-error=unused-parameter -Wno-error=unused-variable -Wno-error=unused-function -Wno-error=unused-but-set-variable" >/dev/null
# The whole unmutated tree first: the Release build of the test command (the
# demo and the benchmarks build this preset), and every row after it an
# incremental build of one changed file.
echo "== mutants: the whole tree, release preset settings"
cmake --build "$tmp/build" -j "$(nproc)" >/dev/null
results=()
status=0
for m in "${order[@]}"; do
    mutate "${file[$m]}" "${expr[$m]}"
    echo "== mutant $m: ${what[$m]}"
    # shellcheck disable=SC2046 # a list of targets
    cmake --build "$tmp/build" -j "$(nproc)" --target $(targets "$m") >/dev/null
    caught_unit=$(unit "$m")
    [ -z "$caught_unit" ] || echo "   unit: FAILED: $caught_unit"
    caught_e2e=""
    # A mutant caught by its unit tests still runs its e2e cases: the table
    # says which layers catch it.
    caught_e2e=$(e2e "$m")
    caught="${caught_unit:+unit: $caught_unit}${caught_unit:+${caught_e2e:+; }}${caught_e2e:+e2e: $caught_e2e}"
    if [ "$m" = control ]; then
        verdict=$([ -z "$caught" ] && echo "passes" || echo "FAILS: $caught")
        [ -z "$caught" ] || status=1
    elif [ -n "${expect[$m]:-}" ] && ! grep -q "${expect[$m]}" <<<"$caught_unit"; then
        verdict="CAUGHT BY THE WRONG ASSERTION (wanted ${expect[$m]}): ${caught:-nothing}"
        status=1
    else
        verdict=$([ -n "$caught" ] && echo "caught by $caught" || echo "MISSED")
        [ -n "$caught" ] || status=1
    fi
    results+=("$(printf '| %-19s | %-40s | %s |' "$m" "${what[$m]}" "$verdict")")
done

echo
echo "| mutant              | broken how                               | caught by (unit tests; e2e cases, the first to fail) |"
echo "|---------------------|------------------------------------------|---|"
printf '%s\n' "${results[@]}"
exit $status
