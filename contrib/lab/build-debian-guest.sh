#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the lab's Debian 12 guest flavor from Debian packages with mmdebstrap
# (no loop mounts: mkfs.ext4 -d into a raw file, then qemu-img convert): systemd,
# Debian's own qemu-guest-agent package and unit (started by its udev rule),
# util-linux-extra (/sbin/hwclock: without it qemu-ga 7.2 answers guest-set-time
# "unsupported"), systemd-timesyncd as a default install has, the cloud kernel
# and an initramfs with the virtio drivers, booted by direct kernel boot; and a
# read-only reference agent (guest-set-time blocked) as its own systemd service
# on org.clocksync.reference.0, the ruler's port.
#
# Two images from the same tree: debian.qcow2 (systemd-timesyncd, no NTP server
# reachable, as on an isolated network) and debian-chrony.qcow2 (chrony
# installed, which replaces systemd-timesyncd as on a Debian host; no source).
# Cached in $LAB_CACHE/debian and rebuilt only when an input changes.
#
# Usage: build-debian-guest.sh     prints the cache directory on success
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${LAB_CACHE:-/var/cache/virt-clocksync-lab}/debian"
suite=bookworm
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd-sysv,udev,qemu-guest-agent,util-linux-extra,systemd-timesyncd,kmod,initramfs-tools,linux-image-cloud-amd64

command -v mmdebstrap >/dev/null || { echo "build-debian-guest: mmdebstrap is not installed" >&2; exit 1; }

# The inputs: this script and the archive's versions of what goes in (the
# kernel package the metapackage points at, the agent, chrony).
[ -n "$(apt-cache policy qemu-guest-agent 2>/dev/null | awk '/Candidate/ {print $2}')" ] ||
    apt-get update -q >/dev/null
versions=$(for p in linux-image-cloud-amd64 qemu-guest-agent util-linux-extra systemd chrony; do
    apt-cache policy "$p" | awk -v p="$p" '/Candidate/ {print p "=" $2}'
done)
stamp=$( { sha256sum "$here/build-debian-guest.sh" | awk '{print $1}'; echo "$versions $mirror"; } | sha256sum | awk '{print $1}')
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] &&
   [ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.img" ] &&
   [ -f "$cache/debian.qcow2" ] && [ -f "$cache/debian-chrony.qcow2" ]; then
    echo "$cache"
    exit 0
fi

mkdir -p "$cache"
chmod 0755 "$cache"
work=$(mktemp -d /var/tmp/clocksync-debian.XXXXXX)
# Nothing is mounted under $work by this script; if mmdebstrap is killed it
# may leave its /proc and /dev mounts in the tree: unmount them before
# removing anything, and never remove across a file system boundary (a /dev
# mount in the tree is the host's own /dev).
cleanup() {
    findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root="$work/root"

# The reference agent: only the reading commands are allowed.
cat > "$work/clocksync-ref-agent" <<'EOF'
#!/bin/sh
# The lab's read-only reference agent: guest-get-time and the sync commands only.
blocked=$(qemu-ga --block-rpcs=? | grep -v -x -e guest-sync-delimited -e guest-sync \
          -e guest-ping -e guest-get-time -e guest-info | tr '\n' ',' | sed 's/,$//')
exec qemu-ga -m virtio-serial -p /dev/virtio-ports/org.clocksync.reference.0 \
     -t /run/qgaref -f /run/qgaref/pid -b "$blocked"
EOF
cat > "$work/clocksync-ref-agent.service" <<'EOF'
[Unit]
Description=Read-only reference guest agent (the virt-clocksync lab's ruler)
BindsTo=dev-virtio\x2dports-org.clocksync.reference.0.device
After=dev-virtio\x2dports-org.clocksync.reference.0.device

[Service]
RuntimeDirectory=qgaref
ExecStart=/usr/local/sbin/clocksync-ref-agent
Restart=always
RestartSec=0
EOF
cat > "$work/clocksync-ref-agent.rules" <<'EOF'
SUBSYSTEM=="virtio-ports", ATTR{name}=="org.clocksync.reference.0", TAG+="systemd", ENV{SYSTEMD_WANTS}+="clocksync-ref-agent.service"
EOF

echo "build-debian-guest: mmdebstrap $suite ($packages)" >&2
# shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's, not ours
mmdebstrap --quiet --mode=root --variant=minbase --include="$packages" \
    --customize-hook='echo clocklab > "$1/etc/hostname"' \
    --customize-hook='printf "virtio_pci\nvirtio_blk\nvirtio_console\next4\n" >> "$1/etc/initramfs-tools/modules"' \
    --customize-hook='echo "/dev/vda / ext4 rw,noatime 0 1" > "$1/etc/fstab"' \
    --customize-hook='passwd --root "$1" -d root >/dev/null' \
    --customize-hook="install -m 0755 $work/clocksync-ref-agent \"\$1/usr/local/sbin/\"" \
    --customize-hook="install -m 0644 $work/clocksync-ref-agent.service \"\$1/etc/systemd/system/\"" \
    --customize-hook="install -m 0644 $work/clocksync-ref-agent.rules \"\$1/etc/udev/rules.d/90-clocksync-ref-agent.rules\"" \
    --customize-hook='chroot "$1" update-initramfs -u -k all >/dev/null' \
    --customize-hook='rm -f "$1/etc/machine-id"; touch "$1/etc/machine-id"' \
    "$suite" "$root" "$mirror" >&2

kver=$(basename "$(ls "$root"/boot/vmlinuz-* | head -1)")
kver=${kver#vmlinuz-}
cp "$root/boot/vmlinuz-$kver" "$cache/vmlinuz.new"
cp "$root/boot/initrd.img-$kver" "$cache/initrd.img.new"

# image NAME: the tree as it is now, into NAME.qcow2 (ext4 made from the directory).
image() {
    rm -f "$work/disk.raw"
    truncate -s 1G "$work/disk.raw"
    mkfs.ext4 -q -F -L clocklab -d "$root" "$work/disk.raw"
    qemu-img convert -O qcow2 "$work/disk.raw" "$cache/$1.qcow2.new"
}
image debian
# chrony as an operator installs it: it replaces systemd-timesyncd (both
# provide time-daemon). It has no reachable source here, as on an isolated
# network. The tree is not mounted into: apt and dpkg get the few device nodes
# they use as plain nodes in the tree, and no /proc.
for n in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
    [ -e "$root/dev/${n%%:*}" ] || mknod -m 0666 "$root/dev/${n%%:*}" c "$(cut -d: -f2 <<<"$n")" "${n##*:}"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
rc=0
{ chroot "$root" apt-get update -q &&
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chrony; } >"$work/chrony.log" 2>&1 || rc=$?
chroot "$root" apt-get clean || true
rm -rf "$root"/var/lib/apt/lists/*
[ $rc -eq 0 ] || { cat "$work/chrony.log" >&2; echo "build-debian-guest: installing chrony failed" >&2; exit 1; }
image debian-chrony

for f in vmlinuz initrd.img debian.qcow2 debian-chrony.qcow2; do
    mv "$cache/$f.new" "$cache/$f"
    chmod 0644 "$cache/$f"
done
echo "$stamp" > "$cache/stamp"
echo "build-debian-guest: built $cache (kernel $kver, images $(du -sh "$cache" | cut -f1))" >&2
echo "$cache"
