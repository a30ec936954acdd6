#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# /init of the lab guest: load virtio, start the guest agent on
# org.qemu.guest_agent.0 and a read-only reference agent (guest-set-time
# blocked) on org.clocksync.reference.0, then idle.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run/qga /run/qgaref

for m in $(cat /lib/modules/order); do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done

cmdline=$(cat /proc/cmdline)
echo "clocksync-lab: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"

port_of() {
    # The /dev node of the virtio port with this name (waits up to 10 s).
    i=0
    while [ $i -lt 100 ]; do
        for p in /sys/class/virtio-ports/*; do
            [ -f "$p/name" ] && [ "$(cat "$p/name")" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
        done
        i=$((i + 1))
        usleep 100000
    done
    return 1
}

start_agent() {
    dev=$(port_of org.qemu.guest_agent.0) || { echo "clocksync-lab: no agent port"; return; }
    echo "clocksync-lab: starting qemu-ga on $dev"
    qemu-ga -m virtio-serial -p "$dev" -t /run/qga -f /run/qga/pid &
}

case " $cmdline " in
    *" clocksync.noagent "*) echo "clocksync-lab: agent disabled" ;;
    *" clocksync.agentdelay="*)
        delay=${cmdline##*clocksync.agentdelay=}
        delay=${delay%% *}
        echo "clocksync-lab: agent starts in $delay s"
        (sleep "$delay"; start_agent) & ;;
    *) start_agent ;;
esac

if ref=$(port_of org.clocksync.reference.0); then
    blocked=$(qemu-ga --block-rpcs=? | grep -v -x -e guest-sync-delimited -e guest-sync \
              -e guest-ping -e guest-get-time -e guest-info | tr '\n' ',' | sed 's/,$//')
    qemu-ga -m virtio-serial -p "$ref" -t /run/qgaref -f /run/qgaref/pid -b "$blocked" &
    echo "clocksync-lab: reference agent on $ref"
fi

echo "clocksync-lab: ready"
while true; do sleep 3600; done
