#!/usr/bin/env bash
# Packed images: base.toml on the reference rootfs packed as cpio.zst and
# as an uncompressed tar, beside the directory itself and beside
# `zstd -dc IMG > /dev/null` (the floor for any reader of a cpio.zst: the
# image must be decompressed once). Wall-clock times of whole commands,
# release build, page cache warm.
#
#   benches/image.sh [ROOTFS]      (default: $NODECHECK_TEST_ROOTFS)
#
# The packed forms are made by tests/images/pack.sh into
# /var/cache/nodecheck/images-bench-* (kept: packing 1.2 GB takes minutes).
# Needs: cpio, zstd, gzip, tar; hyperfine (optional).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/image.sh ROOTFS (or set NODECHECK_TEST_ROOTFS)}}
key=$(printf '%s' "$root" | sha256sum | cut -c1-12)
dir=/var/cache/nodecheck/images-bench-$key
tests/images/pack.sh "$root" "$dir" >/dev/null

cargo build --release --quiet -p nodecheck-cli
bin=${CARGO_TARGET_DIR:-target}/release/nodecheck

run() { "$bin" run profiles/base.toml --target "$1" >/dev/null || [ $? -eq 1 ]; }
export -f run
export bin

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs 3 \
    -n 'zstd -dc rootfs.cpio.zst' "zstd -dc $dir/rootfs.cpio.zst > /dev/null" \
    -n 'base.toml on rootfs.cpio.zst' "bash -c 'run $dir/rootfs.cpio.zst'" \
    -n 'base.toml on rootfs.tar' "bash -c 'run tar:$dir/rootfs.tar'" \
    -n 'base.toml on the directory' "bash -c 'run $root'"
else
  for what in "zstd -dc $dir/rootfs.cpio.zst" "run $dir/rootfs.cpio.zst" "run tar:$dir/rootfs.tar" "run $root"; do
    start=$(date +%s.%N)
    eval "$what" > /dev/null
    printf '%-60s %6.2f s\n' "$what" "$(echo "$(date +%s.%N) - $start" | bc)"
  done
fi
# Peak memory of the cpio.zst run.
/usr/bin/time -f 'base.toml on rootfs.cpio.zst: %M KiB peak resident' \
  "$bin" run profiles/base.toml --target "$dir/rootfs.cpio.zst" >/dev/null || true
