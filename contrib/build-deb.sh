#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian package with the distro tools (dpkg-buildpackage) from a
# copy of the tree with contrib/debian as debian/. Output: build/deb/*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export DEBIAN_FRONTEND=noninteractive
dpkg -s debhelper devscripts >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends debhelper devscripts >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/virt-clocksync-0.1.0"
mkdir -p "$src"
git ls-files -z | xargs -0 -I{} cp --parents {} "$src"
rm -rf "$src/contrib/debian" # it becomes debian/
cp -r contrib/debian "$src/debian"
# Source and binary (a native package: .dsc + .tar.xz, .deb, .changes).
(cd "$src" && dpkg-buildpackage -us -uc >"$work/build.log" 2>&1) || { tail -40 "$work/build.log"; exit 1; }
rm -rf build/deb
mkdir -p build/deb
mv "$work"/*.deb "$work"/*.dsc "$work"/*.tar.* "$work"/*.changes "$work"/*.buildinfo build/deb/
ls -l build/deb/
dpkg-deb -c build/deb/virt-clocksync_*.deb | awk '{print $6}' | grep -E 'bin/|systemd|man|completion|etc/'
