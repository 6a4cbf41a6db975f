#!/usr/bin/env bash
# Build (once) the reference Debian root filesystem the end-to-end tests run
# against, and print its path. The tree is cached outside the repository and
# reused until the package list below changes.
#
#   tests/rootfs/build.sh            # build if needed, print the path
#   NODECHECK_ROOTFS_CACHE=/srv/x tests/rootfs/build.sh
#   NODECHECK_ROOTFS_VARIANT=rebuild tests/rootfs/build.sh
#                                    # a second, independent build from the
#                                    # same list (the drift tests diff the two)
#
# Tests only ever *read* this tree; every test that needs a broken image makes
# its own copy first.
set -euo pipefail

suite=${NODECHECK_SUITE:-bookworm}
mirror=${NODECHECK_MIRROR:-http://deb.debian.org/debian}
cache=${NODECHECK_ROOTFS_CACHE:-/var/cache/nodecheck}

# What the compute profiles expect to find. Keep it sorted; changing it
# rebuilds the cache.
packages=(
  build-essential gfortran kmod libopenmpi-dev libqt5core5a libssl3 libx11-6
  linux-image-amd64 lmod munge openmpi-bin openssh-server python3 slurmd
  systemd systemd-sysv
)

key=$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-12)
dest="$cache/debian-$suite-compute-$key"
variant=${NODECHECK_ROOTFS_VARIANT:-}
if [[ -n $variant ]]; then
  [[ $variant =~ ^[a-z0-9]+$ ]] || {
    echo "NODECHECK_ROOTFS_VARIANT must be [a-z0-9]+" >&2
    exit 1
  }
  dest="$dest-$variant"
fi
if [[ -f "$dest/.nodecheck-rootfs-complete" ]]; then
  echo "$dest"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "building the reference rootfs needs root (debootstrap, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is missing: apt-get install debootstrap" >&2
  exit 1
}

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "building $dest (a few minutes, once)" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2

# No daemons may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
trap 'umount -l "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q \
  --no-install-recommends "${packages[@]}" >&2
chroot "$root" apt-get clean
umount -l "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/lib/apt/lists/"*
: >"$root/etc/resolv.conf"

touch "$root/.nodecheck-rootfs-complete"
mv "$root" "$dest"
echo "$dest"
