#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the RPM from contrib/virt-clocksync.spec with rpmbuild. Output: build/rpm/.
# Arguments go to rpmbuild (e.g. --without check: no unit tests).
# On Fedora/RHEL the distro's macros are used as they are. On a host without
# them (Debian: CI), the few the spec uses (%cmake*, %_unitdir, %systemd_*) are
# defined here the way Fedora's cmake-rpm-macros and systemd-rpm-macros do, and
# BuildRequires are not checked (--nodeps): what this proves there is that the
# spec parses, builds, installs, and that %files matches what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export DEBIAN_FRONTEND=noninteractive
command -v rpmbuild >/dev/null || apt-get install -y -q --no-install-recommends rpm >/dev/null
version=$(sed -n 's/^Version: *//p' contrib/virt-clocksync.spec)
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
git archive --prefix="virt-clocksync-$version/" -o "$top/SOURCES/virt-clocksync-$version.tar.gz" HEAD

defs=()
if [ "$(rpm --eval '%{?cmake:yes}')" != yes ]; then
    defs=(
        --define '__cmake_builddir redhat-linux-build'
        --define 'cmake cmake -S . -B %{__cmake_builddir} -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX:PATH=%{_prefix} -DCMAKE_INSTALL_SYSCONFDIR:PATH=%{_sysconfdir} -DCMAKE_INSTALL_LIBDIR:PATH=%{_lib}'
        --define 'cmake_build cmake --build %{__cmake_builddir} -j%{?_smp_build_ncpus}%{!?_smp_build_ncpus:2}'
        --define 'cmake_install DESTDIR=%{buildroot} cmake --install %{__cmake_builddir}'
        --define '_unitdir /usr/lib/systemd/system'
        --define '_userunitdir /usr/lib/systemd/user'
        --define 'systemd_user_post(-) :'
        --define 'systemd_user_preun(-) :'
        --define 'systemd_post(-) :'
        --define 'systemd_preun(-) :'
        --define 'systemd_postun_with_restart(-) :'
        --define 'debug_package %{nil}'
    )
fi
rpmbuild -bb --nodeps --define "_topdir $top" "${defs[@]}" "$@" contrib/virt-clocksync.spec >"$top/build.log" 2>&1 ||
    { tail -40 "$top/build.log"; exit 1; }
mkdir -p build/rpm
find "$top/RPMS" -name '*.rpm' -exec mv {} build/rpm/ \;
ls -l build/rpm/
rpm -qlp build/rpm/virt-clocksync-"$version"*.rpm
