#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The lab: N tiny guests (TCG) under a libvirt *session* daemon of an
# unprivileged lab user, each with a guest agent and a read-only reference
# agent whose host end is a unix socket (the independent ruler).
#
#   lab.sh up [-n N] [--first K] [--disk] [--append ARGS] [--clock-adjust S] [--no-wait]
#                                              define and start guests clocklab-K..,
#                                              wait for their agents
#   lab.sh down                                destroy everything, kill stray processes
#   lab.sh virsh ARGS...                       virsh -c qemu:///session as the lab user
#   lab.sh run CMD...                          a command as the lab user, lab environment
#                                              (exec'd: `lab.sh run CMD &` gives CMD's pid)
#   lab.sh setup                               create the lab user and directories (idempotent)
#   lab.sh ref NAME                            the reference-agent socket of guest NAME
#   lab.sh console NAME                        the guest's console log
#
# As root it creates the user "clocklab"; as a user who already has libvirt
# (session) access it uses that user as is.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
LAB_URI="qemu:///session"
LAB_PREFIX="clocklab"

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
    if [ "$(id -u)" -eq 0 ]; then
        $run setpriv --reuid="$(id -u "$LAB_USER")" --regid="$(id -g "$LAB_USER")" --init-groups \
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$LAB_HOME" \
            XDG_RUNTIME_DIR="$LAB_RUNTIME" LIBVIRT_DEFAULT_URI="$LAB_URI" "$@"
    else
        $run env HOME="$LAB_HOME" XDG_RUNTIME_DIR="$LAB_RUNTIME" LIBVIRT_DEFAULT_URI="$LAB_URI" "$@"
    fi
}

lvirsh() { as_lab virsh -q -c "$LAB_URI" "$@"; }

domain_xml() {
    local name=$1 cache=$2 append=$3 disk=$4 clock=${5:-"<clock offset='utc'/>"}
    local disk_xml=""
    if [ -n "$disk" ]; then
        disk_xml="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='$disk'/><target dev='vda' bus='virtio'/></disk>"
    fi
    cat <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$cache/vmlinuz</kernel>
    <initrd>$cache/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 $append</cmdline>
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
    local count=1 first=1 disk="" append="" wait=1 clock=""
    while [ $# -gt 0 ]; do
        case "$1" in
            -n) count=$2; shift 2 ;;
            --first) first=$2; shift 2 ;;
            --disk) disk=1; shift ;;
            --append) append=$2; shift 2 ;;
            --no-wait) wait=0; shift ;;
            --clock-adjust) clock="<clock offset='variable' adjustment='$2' basis='utc'/>"; shift 2 ;;
            *) echo "lab up: unknown option $1" >&2; exit 2 ;;
        esac
    done
    ensure_user
    ensure_dirs
    local cache
    cache=$(bash "$here/build-guest.sh")
    local names=()
    for i in $(seq "$first" $((first + count - 1))); do
        local name="$LAB_PREFIX-$i"
        local diskfile=""
        if [ -n "$disk" ]; then
            diskfile="$LAB_DIR/$name.qcow2"
            as_lab qemu-img create -q -f qcow2 "$diskfile" 64M
        fi
        rm -f "$LAB_DIR/$name.console"
        domain_xml "$name" "$cache" "$append" "$diskfile" "$clock" > "$LAB_DIR/$name.xml"
        chmod 0644 "$LAB_DIR/$name.xml"
        lvirsh define "$LAB_DIR/$name.xml" >/dev/null
        lvirsh start "$name" >/dev/null
        names+=("$name")
    done
    if [ "$wait" -eq 1 ]; then
        for name in "${names[@]}"; do
            if ! wait_agent "$name" 90; then
                echo "lab up: the agent of $name did not answer within 90 s; console:" >&2
                tail -20 "$LAB_DIR/$name.console" >&2 || true
                exit 1
            fi
        done
    fi
    printf '%s\n' "${names[@]}"
}

cmd_down() {
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

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    virsh) shift; lvirsh "$@" ;;
    run) shift; [ "$(id -u)" -ne 0 ] || id "$LAB_USER" >/dev/null 2>&1 || ensure_user
         as_lab --exec "$@" ;;
    setup) ensure_user; ensure_dirs ;;
    ref) echo "$LAB_DIR/$2.ref" ;;
    console) cat "$LAB_DIR/$2.console" ;;
    user) echo "$LAB_USER" ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
esac
