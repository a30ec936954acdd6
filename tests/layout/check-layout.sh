#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The architecture, checked: which folders may include libvirt, what each
# program links. Usage: check-layout.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
fail() { echo "layout: $*" >&2; exit 1; }

# 1. libvirt headers: agent/libvirt, qga's libvirt transport, and the CLI's
#    direct (daemon-less) commands. Never the core or the daemon's wiring.
bad=$(grep -rlE '#include <libvirt/' "$src/agent/core" "$src/agent/daemon" "$src/qga" |
      grep -vE 'qga/(libvirtagent\.(h|cpp)|libvirthandles\.h)$' || true)
[ -z "$bad" ] || fail "libvirt included outside agent/libvirt and agent/cli: $bad"
# ... and no core or daemon file includes a libvirt-layer header either.
bad=$(grep -rlE '#include "(libvirtconnection|libvirtbackend|eventmap|eventloop|libvirtagent|libvirthandles)\.h"' \
      "$src/agent/core" "$src/agent/daemon" | grep -v 'agent/daemon/main.cpp$' || true)
[ -z "$bad" ] || fail "core/daemon code reaches into agent/libvirt: $bad"
# The daemon does not include the CLI, nor the CLI the daemon.
bad=$(grep -rlE '#include "(cli|common|controlclient|hostcheck|guesthealth)\.h"' "$src/agent/daemon" || true)
[ -z "$bad" ] || fail "the daemon includes CLI code: $bad"
bad=$(grep -rlE '#include "(daemon|controlserver|controlhandler|reporter|metrics)\.h"' "$src/agent/cli" || true)
[ -z "$bad" ] || fail "the CLI includes daemon code: $bad"

# 2. Link lines. The daemon has no CLI objects, the CLI no daemon objects.
# Each tool's output is taken whole before it is searched: `tool | grep -q`
# under pipefail fails when grep stops reading early (the tool dies of
# SIGPIPE), which turned a match into "no match" -- CI once failed the
# ASan build's "does the daemon link libvirt" on exactly that.
has() { grep -qE "$2" <<<"$1"; }
daemon=$build/agent/virt-clocksyncd
cli=$build/agent/virt-clocksync
! has "$(nm -C "$daemon")" 'clocksync::cli::' || fail "virt-clocksyncd contains CLI code"
! has "$(nm -C "$cli")" 'clocksync::(Daemon|ControlServer|ControlHandler|Reporter)::' ||
    fail "virt-clocksync contains daemon code"
# Tests of the core link no libvirt and no Qt Network; the daemon's wiring
# (tst_daemon: its /metrics endpoint is Qt Network) no libvirt.
for t in tst_syncengine tst_refine tst_tracker tst_config tst_driftwatch; do
    ! has "$(ldd "$build/tests/$t")" 'libvirt|Qt6Network' || fail "$t links libvirt or Qt Network"
done
! has "$(ldd "$build/tests/tst_daemon")" 'libvirt' || fail "tst_daemon links libvirt"
# The programs link what they need.
has "$(ldd "$daemon")" 'libvirt\.so' || fail "virt-clocksyncd does not link libvirt?"
# 3. Every source file says its license (LICENSE: Apache-2.0).
bad=$(find "$src/agent" "$src/qga" "$src/tests" "$src/contrib" "$src/conf" \
        -path "$src/tests/fuzz/corpus" -prune -o \
        -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.sh' -o -name '*.py' -o -name 'CMakeLists.txt' \
                   -o -name '*.yml' -o -name '*.service' -o -name '*.conf' -o -name '*.[158]' \) -print |
      xargs grep -L 'SPDX-License-Identifier: Apache-2.0' || true)
[ -z "$bad" ] || fail "no SPDX-License-Identifier: $bad"
echo "layout: ok (core and daemon wiring free of libvirt; daemon and CLI apart)"
