#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the lab guest from Debian packages only: the cloud kernel, its virtio
# modules, busybox-static (with /sbin/hwclock, which qemu-ga's guest-set-time
# runs) and qemu-ga with its libraries, as a kernel + initramfs. Cached in
# $LAB_CACHE and rebuilt only when an input changes.
#
# Usage: build-guest.sh            prints the cache directory on success
# Guest kernel command-line switches (see init):
#   clocksync.noagent       do not start the guest agent
#   clocksync.agentdelay=N  start the guest agent N seconds after boot
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${LAB_CACHE:-/var/cache/virt-clocksync-lab}"

kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
    apt-get update -q >/dev/null
    kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "build-guest: cannot find the cloud kernel package" >&2; exit 1; }

inputs="$kpkg $(dpkg-query -W -f='${Version}' qemu-guest-agent busybox-static) \
$(sha256sum "$here/build-guest.sh" "$here/guest-init.sh" | awk '{print $1}' | tr '\n' ' ')"
stamp=$(echo "$inputs" | sha256sum | awk '{print $1}')
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] &&
   [ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.img" ]; then
    echo "$cache"
    exit 0
fi

mkdir -p "$cache"
chmod 0755 "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "build-guest: fetching $kpkg" >&2
(cd "$work" && apt-get download -q "$kpkg" >/dev/null)
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/kernel"
kver=${kpkg#linux-image-}
cp "$work/kernel/boot/vmlinuz-$kver" "$cache/vmlinuz"

root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc,lib/modules,var/run}
cp /bin/busybox "$root/bin/busybox"
cp /usr/sbin/qemu-ga "$root/usr/sbin/qemu-ga"
# qemu-ga's shared libraries, at the paths the loader expects.
for lib in $(ldd /usr/sbin/qemu-ga | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
mkdir -p "$root/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
# virtio modules, in load order; absent ones are built in.
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console virtio_blk"
# /lib/modules (Debian 12), /usr/lib/modules (13: the /usr merge is done).
moddir=$work/kernel/lib/modules/$kver
[ -d "$moddir" ] || moddir=$work/kernel/usr/lib/modules/$kver
for m in $mods; do
    f=$(find "$moddir" -name "$m.ko*" | head -1)
    [ -n "$f" ] || continue
    case "$f" in
        *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
        *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
        *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
done
echo "$mods" > "$root/lib/modules/order"
install -m 0755 "$here/guest-init.sh" "$root/init"
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$cache/initrd.img.new"
mv "$cache/initrd.img.new" "$cache/initrd.img"
chmod 0644 "$cache/vmlinuz" "$cache/initrd.img"
echo "$stamp" > "$cache/stamp"
echo "build-guest: built $cache (kernel $kver, initrd $(du -h "$cache/initrd.img" | cut -f1))" >&2
echo "$cache"
