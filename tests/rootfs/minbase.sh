#!/usr/bin/env bash
# Build (once) a minimal Debian tree of another release and print its path:
#   tests/rootfs/minbase.sh bullseye
# The packaging tests install nodecheck's .deb into it and run the release
# binary on its older glibc. Cached in /var/cache/nodecheck like the
# reference rootfs; tests never write to it (they mount an overlay over it).
set -euo pipefail
suite=${1:?usage: minbase.sh SUITE}
mirror=${NODECHECK_MIRROR:-http://deb.debian.org/debian}
cache=${NODECHECK_ROOTFS_CACHE:-/var/cache/nodecheck}
dest="$cache/debian-$suite-minbase"
if [[ -f "$dest/.nodecheck-rootfs-complete" ]]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building $dest (a minute, once)" >&2
debootstrap --variant=minbase "$suite" "$work/root" "$mirror" >&2
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/archives/"*.deb
touch "$work/root/.nodecheck-rootfs-complete"
mv "$work/root" "$dest"
echo "$dest"
