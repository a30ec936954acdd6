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
rc=0
for t in qga policy config control controlserver domainxml; do
    corpus=build/fuzz/corpus/$t
    mkdir -p "$corpus"
    cp -n tests/fuzz/corpus/$t/* "$corpus/" 2>/dev/null || true
    echo "== fuzz_$t for ${seconds}s"
    if ! ./build/fuzz/tests/fuzz/fuzz_$t -max_total_time="$seconds" -max_len=70000 -timeout=10 \
         -artifact_prefix=build/fuzz/crashes/$t- -print_final_stats=1 "$corpus" 2>build/fuzz/$t.log; then
        tail -40 build/fuzz/$t.log
        rc=1
    fi
    grep -E "stat::number_of_executed_runs|stat::peak_rss_mb|cov:" build/fuzz/$t.log | tail -3
done
exit $rc
