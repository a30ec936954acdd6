#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the fuzz preset (clang, libFuzzer + ASan + UBSan) and runs every target
# for SECONDS (default 60) on a copy of its checked-in seed corpus. A crash
# leaves its input in build/fuzz/crashes/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target fuzz_qga fuzz_policy fuzz_config fuzz_control fuzz_controlserver \
    fuzz_domainxml >/dev/null
mkdir -p build/fuzz/crashes
# fuzz_one TARGET: SECONDS of it on its corpus; its log in build/fuzz/TARGET.log.
fuzz_one() {
    local t=$1 corpus=build/fuzz/corpus/$1
    mkdir -p "$corpus"
    cp -n tests/fuzz/corpus/$t/* "$corpus/" 2>/dev/null || true
    ./build/fuzz/tests/fuzz/fuzz_$t -max_total_time="$seconds" -max_len=70000 -timeout=10 \
        -artifact_prefix=build/fuzz/crashes/$t- -print_final_stats=1 "$corpus" 2>build/fuzz/$t.log
}
# One target per core at a time: each still gets SECONDS of a whole core.
targets=(qga policy config control controlserver domainxml)
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
    echo "== fuzz_$t for ${seconds}s"
    rm -f "build/fuzz/$t.rc"
    { status=0; fuzz_one "$t" || status=$?; echo "$status" >"build/fuzz/$t.rc"; } &
done
wait
rc=0
for t in "${targets[@]}"; do
    if [ "$(cat "build/fuzz/$t.rc" 2>/dev/null)" != 0 ]; then
        echo "== fuzz_$t FAILED"
        tail -40 "build/fuzz/$t.log"
        rc=1
    fi
    echo "== fuzz_$t: $(grep -E "stat::number_of_executed_units|stat::new_units_added" "build/fuzz/$t.log" | tr -s " " | tr "\n" " ")"
done
exit $rc
