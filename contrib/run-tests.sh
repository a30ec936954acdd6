#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs every dependency, builds (warnings are errors) and runs the whole
# test suite (unit, integration, e2e on lab guests), the mutation check of the
# e2e suite, the distribution checks (packages, lint, unit, alert rules), then
# builds with ASan+UBSan and TSan and runs the non-lab tests again, and fuzzes. Under CI=true (.ci/run sets it) a skipped test fails.
# Usage (as root on Debian 12): bash contrib/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/install-deps.sh all

jobs=$(nproc)
echo "== build (default preset: Debug, -Werror)"
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"

echo "== tests (default build; the e2e cases run serially on lab guests)"
ctest --preset default -j "$jobs"

# (the mutation check first compiles the whole tree in Release, -Werror, as
# the demo and the benchmarks build it: no separate release build here)
echo "== mutation check: deliberately broken daemons must fail the single-guest e2e cases"
bash contrib/ci/mutants.sh

echo "== distribution: Debian and RPM packages (lintian, rpmlint), the installed package, the unit, alert rules"
bash contrib/ci/packaging.sh

echo "== build (asan preset: ASan + UBSan)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"

echo "== tests (ASan + UBSan build, without the lab suite)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan -j "$jobs"

echo "== build (tsan preset: ThreadSanitizer)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"

echo "== tests (TSan build, without the lab suite; suppressions and their reasons: tests/tsan.supp)"
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1" ctest --preset tsan -j "$jobs"

echo "== fuzzing (libFuzzer + ASan + UBSan), ${FUZZ_SECONDS:-60} s per target"
bash tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-60}"
