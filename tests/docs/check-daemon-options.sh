#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every option virt-clocksyncd --help lists is in its man page, and every
# option the man page lists is one the program knows.
# Usage: check-daemon-options.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
man=$1/conf/man/virt-clocksyncd.8
bin=$2/agent/virt-clocksyncd
help=$("$bin" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
documented=$(sed 's/\\-/-/g' "$man" | sed -n '/^\.SH OPTIONS/,/^\.SH /p' | grep -oE -- '--[a-z][a-z-]+' | sort -u)
missing=$(comm -23 <(grep -vxE -- '--help-all|--help|--version' <<<"$help") <(echo "$documented"))
[ -z "$missing" ] || { echo "not in $man: $missing" >&2; exit 1; }
unknown=$(comm -13 <(echo "$help") <(echo "$documented"))
[ -z "$unknown" ] || { echo "in $man but not in --help: $unknown" >&2; exit 1; }
echo "daemon options and man page agree: $(echo $help)"
