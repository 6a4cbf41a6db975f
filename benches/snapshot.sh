#!/usr/bin/env bash
# Recording the reference rootfs, and diffing two recordings.
#
#   snapshot   `nodecheck snapshot ROOT` (every entry's metadata, BLAKE3 of
#              every regular file, xattrs, the image's meaning, zstd) vs
#              find -printf of the metadata + sha256sum of every file on
#              both cores (the shell way), and AIDE's `aide --init` with
#              a p+i+n+u+g+s+m+c+sha256+xattrs rule over the same tree.
#   diff       `nodecheck diff A.snap B.snap` of two snapshot files (the
#              reference and its independent rebuild, when built).
#
#   benches/snapshot.sh [ROOTFS [REBUILT]]   (default: $NODECHECK_TEST_ROOTFS
#                                             and $NODECHECK_TEST_ROOTFS_REBUILD)
#   NODECHECK_BIN=/path/to/nodecheck benches/snapshot.sh
#
# Wall-clock means of the whole command (process start included), page
# cache warm (a warm-up run first), release build; hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/snapshot.sh ROOTFS [REBUILT]}}
root=$(readlink -f "$root")
rebuilt=${2:-${NODECHECK_TEST_ROOTFS_REBUILD:-$root-rebuild}}
for tool in hyperfine aide; do
  command -v "$tool" >/dev/null || { echo "$tool not found: see tests/deps.sh" >&2; exit 2; }
done
if [[ -n ${NODECHECK_BIN:-} ]]; then
  bin=$(readlink -f "$NODECHECK_BIN")
else
  cargo build --release --quiet -p nodecheck-cli
  bin=$(readlink -f "${CARGO_TARGET_DIR:-target}/release/nodecheck")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/aide.conf" <<CONF
database_out=file:$work/aide.db
gzip_dbout=no
Snap = p+i+n+u+g+s+m+c+sha256+xattrs
$root Snap
CONF

echo "tree: $root ($(du -sh --apparent-size "$root" 2>/dev/null | cut -f1), $(find "$root" -xdev | wc -l) entries), $(nproc) CPUs"
hyperfine --warmup 1 --runs 5 --style basic \
  -n "nodecheck snapshot" "$bin snapshot $root -o $work/a.snap" \
  -n "find -printf + sha256sum -P$(nproc)" \
     "find $root -xdev -printf '%p %y %m %U %G %s %T@ %l\n' >/dev/null; find $root -xdev -type f -print0 | xargs -0 -P$(nproc) -n256 sha256sum >/dev/null" \
  -n "aide --init" "aide --config=$work/aide.conf --init >/dev/null 2>&1 || [ \$? -lt 14 ]"
echo "snapshot file: $(stat -c %s "$work/a.snap") bytes"

b=$work/a.snap
if [[ -f $rebuilt/.nodecheck-rootfs-complete ]]; then
  "$bin" snapshot "$rebuilt" -o "$work/b.snap"
  b=$work/b.snap
fi
hyperfine --warmup 2 --runs 20 --style basic -i \
  -n "nodecheck diff A.snap B.snap" "$bin diff $work/a.snap $b --json $work/d.json"
