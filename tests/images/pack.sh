#!/usr/bin/env bash
# Packs the reference rootfs ROOT into packed images with the real tools, for
# tests/e2e/images.rs and benches/image.sh, into OUT (a cache directory keyed
# by the caller on ROOT and the tools' versions). Idempotent: an image
# already there is kept; each is written to a temporary name and renamed.
#
#   tests/images/pack.sh ROOT OUT
#
# Made: rootfs.cpio.zst (find | cpio -o -H newc | zstd), rootfs.cpio.gz with
# an uncompressed early-microcode cpio prepended (as dracut writes it),
# rootfs.tar (tar --xattrs, uncompressed: read by offset), rootfs.sqfs
# (mksquashfs, zstd, xattrs kept; -Xcompression-level 3 and 2 processors
# keep packing short on a 2-core CI machine), rootfs.cpio.lz4 (`lz4 -l`,
# the legacy format the kernel takes for an initramfs) and rootfs.cpio.bz2.
set -euo pipefail
root=$1
out=$2
mkdir -p "$out"
cd "$root"
list() { find . -mindepth 1 -print0 | LC_ALL=C sort -z; }
make() { # NAME COMMAND...: runs COMMAND > OUT/NAME.tmp, then renames.
  local name=$1; shift
  [ -e "$out/$name" ] && return 0
  "$@" > "$out/$name.tmp"
  mv "$out/$name.tmp" "$out/$name"
}
zst() { list | cpio --null -o -H newc --quiet | zstd -q -3 -T2; }
make rootfs.cpio.zst zst
early_gz() {
  local early
  early=$(mktemp -d)
  mkdir -p "$early/kernel/x86/microcode"
  printf 'not real microcode\n' > "$early/kernel/x86/microcode/GenuineIntel.bin"
  (cd "$early" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet)
  rm -r "$early"
  list | cpio --null -o -H newc --quiet | gzip -1
}
make rootfs.early.cpio.gz early_gz
make rootfs.tar tar --xattrs --xattrs-include='*' --numeric-owner -cf - .
[ -e "$out/rootfs.sqfs" ] || {
  rm -f "$out/rootfs.sqfs.tmp"
  mksquashfs . "$out/rootfs.sqfs.tmp" -comp zstd -Xcompression-level 3 -processors 2 \
    -noappend -quiet -no-progress >/dev/null
  mv "$out/rootfs.sqfs.tmp" "$out/rootfs.sqfs"
}
lz4_legacy() { list | cpio --null -o -H newc --quiet | lz4 -l -1 -q -c; }
make rootfs.cpio.lz4 lz4_legacy
bz2() { list | cpio --null -o -H newc --quiet | bzip2 -1 -c; }
make rootfs.cpio.bz2 bz2
echo pack-done
