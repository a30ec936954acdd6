#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# One command for the benchmarks (as root on Debian 12): installs, builds the
# release preset, runs contrib/bench/bench.py. Arguments go to bench.py
# (e.g. -n 30 --mass 8 --idle 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash contrib/install-deps.sh all >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >/dev/null
exec python3 contrib/bench/bench.py "$@"
