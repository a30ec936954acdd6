#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The Python files are formatted by black (pyproject.toml), as the C++ by
# clang-format. Usage: check-python-format.sh REPO
set -euo pipefail
cd "$1"
if ! command -v black >/dev/null; then
    [ "${CI:-}" != true ] || { echo "black is missing (contrib/install-deps.sh all installs it)"; exit 1; }
    echo "black is not installed: skipped"
    exit 77
fi
black --check --diff --quiet $(git ls-files '*.py' 2>/dev/null || find . -name '*.py' -not -path './build/*')
