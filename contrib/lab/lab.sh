#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The lab: N tiny guests (TCG) under a libvirt *session* daemon of an
# unprivileged lab user, each with a guest agent and a read-only reference
# agent whose host end is a unix socket (the independent ruler).
#
#   lab.sh up [-n N] [--first K] [--disk] [--append ARGS] [--clock-adjust S] [--no-wait]
#             [--flavor busybox|debian|debian-chrony]
#                                              define and start guests clocklab-K..,
#                                              wait for their agents. Flavors: busybox
#                                              (default: kernel + initramfs, ~5 s to the
#                                              agent), debian (Debian 12 with systemd,
#                                              Debian's qemu-guest-agent and
#                                              systemd-timesyncd, ~40 s; a qcow2 overlay
#                                              per guest), debian-chrony (the same with
#                                              chrony instead of timesyncd)
#   lab.sh down                                destroy everything, kill stray processes
#   lab.sh virsh ARGS...                       virsh -c qemu:///session as the lab user
#   lab.sh run CMD...                          a command as the lab user, lab environment
#                                              (exec'd: `lab.sh run CMD &` gives CMD's pid)
#   lab.sh setup                               create the lab user and directories (idempotent)
#   lab.sh ref NAME [--peer]                   the reference-agent socket of guest NAME
#                                              (--peer: of its copy migrated to the peer)
#   lab.sh console NAME                        the guest's console log
#   lab.sh peer start|stop|uri                 a second session libvirtd of the lab user
#                                              (own XDG dirs and host_uuid): a migration
#                                              destination on this same host
#   lab.sh peer virsh ARGS...                  virsh against the peer
#   lab.sh migrate NAME [--not-live] [VIRSH-MIGRATE-OPTS...]
#                                              migrate NAME to the peer (disk-less
#                                              guest: no shared storage; its console and
#                                              reference socket get peer paths)
#
# As root it creates the user "clocklab"; as a user who already has libvirt
# (session) access it uses that user as is.
#
# LAB_SYSTEM=1 (as root): the same lab under the *system* libvirtd
# (qemu:///system; QEMU runs as libvirt-qemu; guests' files in
# /var/lib/clocklab-system); `lab.sh system start|stop` starts and stops
# virtlogd and libvirtd by hand (no systemd needed); `lab.sh run` runs as root,
# or as LAB_RUN_AS (a user in the libvirt group).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
LAB_URI="qemu:///session"
LAB_PREFIX="clocklab"
LAB_SYSTEM="${LAB_SYSTEM:-}"
if [ -n "$LAB_SYSTEM" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "lab: LAB_SYSTEM=1 needs root" >&2; exit 1; }
    LAB_URI="qemu:///system"
    LAB_DIR="${LAB_DIR:-/var/lib/clocklab-system}"
fi

if [ "$(id -u)" -eq 0 ]; then
    LAB_USER="${LAB_USER:-clocklab}"
    LAB_HOME="/var/lib/clocklab"
    LAB_RUNTIME="/run/clocklab-runtime"
else
    LAB_USER="$(id -un)"
    LAB_HOME="$HOME"
    LAB_RUNTIME="${XDG_RUNTIME_DIR:-/tmp/clocklab-runtime-$(id -u)}"
fi
LAB_DIR="${LAB_DIR:-/tmp/clocklab}"

ensure_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id "$LAB_USER" >/dev/null 2>&1; then
        useradd --system --home-dir "$LAB_HOME" --create-home --shell /bin/sh "$LAB_USER"
    fi
    # /dev/kvm is not used (TCG), but qemu needs nothing else from the user.
    mkdir -p "$LAB_HOME" "$LAB_RUNTIME"
    chown "$LAB_USER:" "$LAB_HOME" "$LAB_RUNTIME"
    chmod 0700 "$LAB_RUNTIME"
}

ensure_dirs() {
    if [ -n "$LAB_SYSTEM" ]; then
        # QEMU (libvirt-qemu) creates the reference socket and console here.
        mkdir -p "$LAB_DIR"
        chown libvirt-qemu:libvirt-qemu "$LAB_DIR"
        chmod 0755 "$LAB_DIR"
        return 0
    fi
    mkdir -p "$LAB_DIR" "$LAB_RUNTIME"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$LAB_USER:" "$LAB_DIR" "$LAB_RUNTIME"
    fi
    chmod 0755 "$LAB_DIR"
    chmod 0700 "$LAB_RUNTIME"
}

# as_lab CMD...: runs a command as the lab user in the lab environment.
# setpriv and env exec, they do not fork: `lab.sh run CMD &` leaves in $! the
# pid of CMD itself, so a caller can signal and wait for the real process.
as_lab() {
    local run=""
    if [ "${1:-}" = "--exec" ]; then run=exec; shift; fi
    if [ -n "$LAB_SYSTEM" ]; then
        local user=${LAB_RUN_AS:-root}
        $run setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups \
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LIBVIRT_DEFAULT_URI="$LAB_URI" "$@"
        return
    fi
    if [ "$(id -u)" -eq 0 ]; then
        $run setpriv --reuid="$(id -u "$LAB_USER")" --regid="$(id -g "$LAB_USER")" --init-groups \
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$LAB_HOME" \
            XDG_RUNTIME_DIR="$LAB_RUNTIME" LIBVIRT_DEFAULT_URI="$LAB_URI" "$@"
    else
        $run env HOME="$LAB_HOME" XDG_RUNTIME_DIR="$LAB_RUNTIME" LIBVIRT_DEFAULT_URI="$LAB_URI" "$@"
    fi
}

lvirsh() {
    if [ -n "$LAB_SYSTEM" ]; then
        virsh -q -c "$LAB_URI" "$@" # root, whoever runs the daemon
    else
        as_lab virsh -q -c "$LAB_URI" "$@"
    fi
}

# domain_xml NAME KERNEL-DIR CMDLINE DISK CLOCK-XML MEMORY-MIB
domain_xml() {
    local name=$1 cache=$2 append=$3 disk=$4 clock=${5:-"<clock offset='utc'/>"} memory=${6:-160}
    local disk_xml=""
    if [ -n "$disk" ]; then
        disk_xml="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='$disk'/><target dev='vda' bus='virtio'/></disk>"
    fi
    cat <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$memory</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$cache/vmlinuz</kernel>
    <initrd>$cache/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1$append</cmdline>
  </os>
  <features><acpi/><apic/></features>
  $clock
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    $disk_xml
    <serial type='file'><source path='$LAB_DIR/$name.console'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <channel type='unix'>
      <source mode='bind' path='$LAB_DIR/$name.ref'/>
      <target type='virtio' name='org.clocksync.reference.0'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}

# Waits until the guest agent of $1 answers, up to $2 seconds.
wait_agent() {
    local name=$1 deadline=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if lvirsh qemu-agent-command "$name" '{"execute":"guest-ping"}' --timeout 2 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

cmd_up() {
    local count=1 first=1 disk="" append="" wait=1 clock="" flavor=busybox
    while [ $# -gt 0 ]; do
        case "$1" in
            -n) count=$2; shift 2 ;;
            --first) first=$2; shift 2 ;;
            --disk) disk=1; shift ;;
            --append) append=$2; shift 2 ;;
            --no-wait) wait=0; shift ;;
            --clock-adjust) clock="<clock offset='variable' adjustment='$2' basis='utc'/>"; shift 2 ;;
            --flavor) flavor=$2; shift 2 ;;
            *) echo "lab up: unknown option $1" >&2; exit 2 ;;
        esac
    done
    ensure_user
    ensure_dirs
    local cache memory=160 base="" boot="" agent_wait=90
    case "$flavor" in
        busybox) cache=$(bash "$here/build-guest.sh") ;;
        debian|debian-chrony)
            cache=$(bash "$here/build-debian-guest.sh")
            base="$cache/$flavor.qcow2" memory=512 agent_wait=240
            boot=" root=/dev/vda rw quiet" ;;
        *) echo "lab up: unknown flavor $flavor (busybox, debian, debian-chrony)" >&2; exit 2 ;;
    esac
    local names=()
    for i in $(seq "$first" $((first + count - 1))); do
        local name="$LAB_PREFIX-$i"
        local diskfile=""
        if [ -n "$base" ]; then
            # The guest's own writes go to an overlay; the cached image stays as built.
            diskfile="$LAB_DIR/$name.qcow2"
            as_lab qemu-img create -q -f qcow2 -F qcow2 -b "$base" "$diskfile"
        elif [ -n "$disk" ]; then
            diskfile="$LAB_DIR/$name.qcow2"
            as_lab qemu-img create -q -f qcow2 "$diskfile" 64M
        fi
        rm -f "$LAB_DIR/$name.console"
        domain_xml "$name" "$cache" "$boot${append:+ $append}" "$diskfile" "$clock" "$memory" > "$LAB_DIR/$name.xml"
        chmod 0644 "$LAB_DIR/$name.xml"
        lvirsh define "$LAB_DIR/$name.xml" >/dev/null
        lvirsh start "$name" >/dev/null
        names+=("$name")
    done
    if [ "$wait" -eq 1 ]; then
        for name in "${names[@]}"; do
            if ! wait_agent "$name" "$agent_wait"; then
                echo "lab up: the agent of $name did not answer within $agent_wait s; console:" >&2
                tail -20 "$LAB_DIR/$name.console" >&2 || true
                exit 1
            fi
        done
    fi
    printf '%s\n' "${names[@]}"
}

cmd_down() {
    if [ -n "$LAB_SYSTEM" ]; then
        for name in $(lvirsh list --all --name 2>/dev/null | grep "^$LAB_PREFIX-" || true); do
            lvirsh destroy "$name" >/dev/null 2>&1 || true
            lvirsh undefine --managed-save --snapshots-metadata "$name" >/dev/null 2>&1 || true
        done
        rm -rf "$LAB_DIR"
        return 0
    fi
    peer_stop
    if id "$LAB_USER" >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
        for name in $(lvirsh list --all --name 2>/dev/null | grep "^$LAB_PREFIX-" || true); do
            lvirsh destroy "$name" >/dev/null 2>&1 || true
            lvirsh undefine --managed-save --snapshots-metadata "$name" >/dev/null 2>&1 || true
        done
        if [ "$(id -u)" -eq 0 ]; then
            # Everything the lab user runs (session libvirtd, qemu) goes.
            pkill -KILL -u "$LAB_USER" 2>/dev/null || true
        fi
    fi
    rm -rf "$LAB_DIR"
}

# ---- the peer: a second libvirt daemon of the lab user --------------------
PEER_DIR="$LAB_DIR/peer"
PEER_SOCK="$PEER_DIR/runtime/libvirt/libvirt-sock"
PEER_URI="qemu:///session?socket=$PEER_SOCK"
MIGRATION_PORT="${LAB_MIGRATION_PORT:-49321}"

# as_peer CMD...: as the lab user, in the peer daemon's own environment.
as_peer() {
    local run=""
    if [ "${1:-}" = "--exec" ]; then run=exec; shift; fi
    local envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$PEER_DIR/home"
                XDG_CONFIG_HOME="$PEER_DIR/config" XDG_RUNTIME_DIR="$PEER_DIR/runtime"
                XDG_CACHE_HOME="$PEER_DIR/cache" XDG_DATA_HOME="$PEER_DIR/data")
    if [ "$(id -u)" -eq 0 ]; then
        $run setpriv --reuid="$(id -u "$LAB_USER")" --regid="$(id -g "$LAB_USER")" --init-groups \
            env -i "${envs[@]}" "$@"
    else
        $run env "${envs[@]}" "$@"
    fi
}

peer_start() {
    ensure_user
    ensure_dirs
    if [ -S "$PEER_SOCK" ] && as_peer virsh -q -c "$PEER_URI" version >/dev/null 2>&1; then
        echo "$PEER_URI"
        return 0
    fi
    mkdir -p "$PEER_DIR"/{home,config/libvirt,runtime,cache,data}
    # Equal host UUIDs: libvirt refuses "Attempt to migrate guest to the same host".
    echo "host_uuid = \"$(cat /proc/sys/kernel/random/uuid)\"" > "$PEER_DIR/config/libvirt/libvirtd.conf"
    [ "$(id -u)" -ne 0 ] || chown -R "$LAB_USER:" "$PEER_DIR"
    chmod 0700 "$PEER_DIR/runtime"
    ( as_peer --exec libvirtd --timeout 0 ) >"$PEER_DIR/libvirtd.log" 2>&1 &
    echo $! > "$PEER_DIR/pid"
    local deadline=$(( $(date +%s) + 30 ))
    until [ -S "$PEER_SOCK" ] && as_peer virsh -q -c "$PEER_URI" version >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$(cat "$PEER_DIR/pid")" 2>/dev/null; then
            echo "lab peer: libvirtd did not come up; its log:" >&2
            cat "$PEER_DIR/libvirtd.log" >&2
            exit 1
        fi
        sleep 0.2 # polling the daemon's socket, bounded by the deadline
    done
    echo "$PEER_URI"
}

peer_stop() {
    [ -d "$PEER_DIR" ] || return 0
    if [ -S "$PEER_SOCK" ]; then
        for name in $(as_peer virsh -q -c "$PEER_URI" list --all --name 2>/dev/null | grep "^$LAB_PREFIX-" || true); do
            as_peer virsh -q -c "$PEER_URI" destroy "$name" >/dev/null 2>&1 || true
            as_peer virsh -q -c "$PEER_URI" undefine "$name" >/dev/null 2>&1 || true
        done
    fi
    if [ -f "$PEER_DIR/pid" ]; then
        kill "$(cat "$PEER_DIR/pid")" 2>/dev/null || true
        rm -f "$PEER_DIR/pid"
    fi
}

# The domain as the peer runs it: its console file and reference socket
# under the peer's directory (both QEMUs run at once during the migration).
cmd_migrate() {
    local name=$1 live=--live; shift
    if [ "${1:-}" = "--not-live" ]; then live=""; shift; fi # paused for the whole transfer
    lvirsh dumpxml --migratable "$name" |
        sed -e "s#$LAB_DIR/$name.console#$PEER_DIR/$name.console#" \
            -e "s#$LAB_DIR/$name.ref#$PEER_DIR/$name.ref#" > "$LAB_DIR/$name.peer.xml"
    chmod 0644 "$LAB_DIR/$name.peer.xml"
    as_lab virsh -q -c "$LAB_URI" migrate $live "$name" "$PEER_URI" \
        --migrateuri "tcp://127.0.0.1:$MIGRATION_PORT" --listen-address 127.0.0.1 \
        --xml "$LAB_DIR/$name.peer.xml" "$@"
}

# ---- system mode: libvirtd (and virtlogd) started by hand ------------------
SYSTEM_SOCK=/run/libvirt/libvirt-sock
# unix_socket_answers PATH: something accepts connections on that socket.
unix_socket_answers() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])' "$1" 2>/dev/null
}
system_start() {
    getent passwd libvirt-qemu >/dev/null ||
        { echo "lab system: libvirt-daemon-system is not installed" >&2; exit 1; }
    if [ -S "$SYSTEM_SOCK" ] && virsh -q -c qemu:///system version >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p /run/libvirt
    # QEMU's logs go through virtlogd (socket-activated where systemd runs).
    # A socket file alone proves nothing: a virtlogd that was killed leaves
    # its sockets behind (CI once failed every system case on "Connection
    # refused" there), so it is tried, and a dead one replaced.
    if ! unix_socket_answers /run/libvirt/virtlogd-sock; then
        rm -f /run/libvirt/virtlogd-sock /run/libvirt/virtlogd-admin-sock
        virtlogd -d -p /run/clocklab-virtlogd.pid
        local logd_deadline=$(( $(date +%s) + 10 ))
        until unix_socket_answers /run/libvirt/virtlogd-sock; do
            [ "$(date +%s)" -lt "$logd_deadline" ] || { echo "lab system: virtlogd did not come up" >&2; exit 1; }
            sleep 0.1 # polling the daemon's socket, bounded by the deadline
        done
    fi
    # Debian lets the libvirt group in through polkit (60-libvirt.rules),
    # which needs the system D-Bus; this test machine has none, so the same
    # access is given by the socket's group and mode alone.
    cat > /run/clocklab-libvirtd.conf <<CONF
unix_sock_group = "libvirt"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
CONF
    libvirtd -d -f /run/clocklab-libvirtd.conf --pid-file /run/clocklab-libvirtd.pid
    local deadline=$(( $(date +%s) + 30 ))
    until [ -S "$SYSTEM_SOCK" ] && virsh -q -c qemu:///system version >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "lab system: libvirtd did not come up" >&2; exit 1; }
        sleep 0.2 # polling the daemon's socket, bounded by the deadline
    done
}

# Stops only what system_start started (its pid files), and waits for it to
# be gone: a next start must not race a daemon still shutting down.
system_stop() {
    local f pid deadline
    for f in /run/clocklab-libvirtd.pid /run/clocklab-virtlogd.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        deadline=$(( $(date +%s) + 15 ))
        while kill -0 "$pid" 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || { kill -9 "$pid" 2>/dev/null || true; break; }
            sleep 0.1 # polling the daemon's exit, bounded by the deadline
        done
        rm -f "$f"
    done
}

cmd_ref() {
    if [ "${2:-}" = "--peer" ]; then echo "$PEER_DIR/$1.ref"; else echo "$LAB_DIR/$1.ref"; fi
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    virsh) shift; lvirsh "$@" ;;
    run) shift; [ "$(id -u)" -ne 0 ] || id "$LAB_USER" >/dev/null 2>&1 || ensure_user
         as_lab --exec "$@" ;;
    setup) ensure_user; ensure_dirs ;;
    ref) shift; cmd_ref "$@" ;;
    peer) case "${2:-}" in
              start) peer_start ;;
              stop) peer_stop ;;
              uri) echo "$PEER_URI" ;;
              virsh) shift 2; as_peer virsh -q -c "$PEER_URI" "$@" ;;
              *) echo "lab peer: start, stop, uri or virsh" >&2; exit 2 ;;
          esac ;;
    migrate) shift; cmd_migrate "$@" ;;
    system) case "${2:-}" in
                start) system_start ;;
                stop) system_stop ;;
                *) echo "lab system: start or stop" >&2; exit 2 ;;
            esac ;;
    console) cat "$LAB_DIR/$2.console" ;;
    user) echo "$LAB_USER" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
