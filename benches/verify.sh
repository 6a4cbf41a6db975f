#!/usr/bin/env bash
# Package integrity of a whole image: nodecheck vs dpkg --verify vs a pure
# MD5 floor.
#
# nodecheck verifies every package of the reference rootfs (`package` with
# `name = "*"`, `verify = true`): it reads the dpkg database, stats every
# listed path and hashes every file that has a digest, through its
# Target, in parallel. The peers, over the same tree:
#
#   dpkg --root=ROOT --verify            the oracle: one process, MD5 of the
#                                        same files, same findings
#   xargs md5sum  FILES (one process)    the MD5 floor: only the hashing of
#   xargs -P N md5sum FILES              the files the md5sums and Conffiles
#                                        list, nothing else (N = nproc)
#
# All are wall-clock times of the whole command, page cache warm (a warmup
# run first), release build. The figures depend on the machine's cores and
# load: rerun on an idle machine before quoting them. On a shared machine
# with autogroup scheduling, a group's CPU share does not grow with its
# threads; run the script in its own group at top priority (as root) to
# give it the cores while it runs (docs/verify.md has the figures):
#
#   benches/verify.sh [ROOTFS]      (default: $NODECHECK_TEST_ROOTFS)
#   setsid bash -c 'echo -20 > /proc/self/autogroup; nice -n -20 benches/verify.sh'
#
# Needs dpkg and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/verify.sh ROOTFS (or set NODECHECK_TEST_ROOTFS)}}
root=$(readlink -f "$root")
command -v hyperfine >/dev/null || { echo "hyperfine not found: see tests/deps.sh" >&2; exit 2; }

cargo build --release --quiet -p nodecheck-cli
bin=$(readlink -f "${CARGO_TARGET_DIR:-target}/release/nodecheck")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/verify.toml" <<'TOML'
[profile]
name = "verify-bench"
[[control]]
id = "integrity"
  [[control.package]]
  name   = "*"
  verify = true
TOML

# The files dpkg hashes: every md5sums entry and every conffile, relative
# to the root (paths through /bin and /lib reach /usr on a merged-/usr
# image, as they do for dpkg), regular files only.
(
  cd "$root"
  cat var/lib/dpkg/info/*.md5sums | cut -c35-
  sed -n '/^Conffiles:/,/^[^ ]/s/^ \/\([^ ]*\) .*/\1/p' var/lib/dpkg/status
) | sort -u | while IFS= read -r f; do
  [[ -f "$root/$f" && ! -L "$root/$f" ]] && printf '%s\n' "$f"
done > "$work/files"
count=$(wc -l < "$work/files")
bytes=$(cd "$root" && tr '\n' '\0' < "$work/files" | du -cb --files0-from=- | tail -1 | cut -f1)
cores=$(nproc)
echo "rootfs:  $root"
echo "files:   $count files with digests, $((bytes / 1048576)) MiB; $cores cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "findings (nodecheck / dpkg):"
"$bin" run "$work/verify.toml" --target "$root" | grep -E '^\s+[×✔!]' | head -3 || true
dpkg --root="$root" --verify | head -3
echo

# nodecheck and dpkg exit 1 / print findings when the image differs from
# its packages (the reference build empties /var/lib/apt/lists); -i keeps
# hyperfine going.
hyperfine --warmup 1 --runs "${RUNS:-5}" -i \
  --export-markdown "$work/table.md" \
  -n nodecheck "$bin run $work/verify.toml --target $root" \
  -n "dpkg --verify" "dpkg --root=$root --verify" \
  -n "md5sum (1 process)" "cd $root && xargs -d '\n' -a $work/files md5sum > /dev/null" \
  -n "md5sum (-P $cores)" "cd $root && xargs -d '\n' -a $work/files -n 256 -P $cores md5sum > /dev/null"
echo
cat "$work/table.md"
