#!/usr/bin/env bash
# Foundation benchmark: a generated 1,000-check profile (files, users,
# groups) against the reference rootfs, process start included, with
# --jobs 1 and the default. Prints wall time and checks per second.
#
#   benches/foundation.sh [ROOTFS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${NODECHECK_TEST_ROOTFS:-$(tests/rootfs/build.sh)}}
cargo build --release -q -p nodecheck-cli
bin=target/release/nodecheck
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
profile=${BENCH_PROFILE:-$work/bench.toml}

# Real entries of the image: files with their real owner and mode, so every
# check passes and does its full work (stat, owner lookup, mode compare).
users=$(grep -c . "$root/etc/passwd")
groups=$(grep -c . "$root/etc/group")
files=$((1000 - users - groups))
{
  printf '[profile]\nname = "bench"\n\n'
  n=0
  while IFS=' ' read -r mode uid gid path; do
    printf '[[control]]\nid = "f%d"\n[[control.file]]\npath = "%s"\ntype = "file"\nowner = "%s"\ngroup = "%s"\nmode = "%04o"\n\n' \
      "$n" "$path" "$uid" "$gid" "0$mode"
    n=$((n + 1))
  done < <(cd "$root" && find usr/bin usr/sbin etc usr/lib/x86_64-linux-gnu -xdev -type f -printf '%m %U %G /%p\n' 2>/dev/null | head -n "$files")
  cut -d: -f1 "$root/etc/passwd" | while read -r u; do
    printf '[[control]]\nid = "u-%s"\n[[control.user]]\nname = "%s"\nexists = true\n\n' "$u" "$u"
  done
  cut -d: -f1 "$root/etc/group" | while read -r g; do
    printf '[[control]]\nid = "g-%s"\n[[control.group]]\nname = "%s"\nexists = true\n\n' "$g" "$g"
  done
} >"$profile"
checks=$($bin list "$profile" | grep -c '^    ')
echo "profile: $checks checks against $root"
$bin run "$profile" --target "$root" >/dev/null || { echo "the generated profile does not pass" >&2; exit 1; }

measure() { # label, args...
  local label=$1
  shift
  local runs=30 start end
  start=$(date +%s%N)
  for _ in $(seq $runs); do "$bin" run "$profile" --target "$root" "$@" >/dev/null; done
  end=$(date +%s%N)
  local ms=$(((end - start) / runs / 1000))
  awk -v l="$label" -v us="$ms" -v n="$checks" \
    'BEGIN { printf "%-22s %8.1f ms   %9.0f checks/s\n", l, us / 1000, n / (us / 1e6) }'
}
printf '%-22s %11s   %16s\n' "nodecheck run" "wall (mean)" "throughput"
measure "--jobs 1" --jobs 1
measure "default (--jobs $(nproc))"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs 30 \
    "$bin run $profile --target $root --jobs 1" \
    "$bin run $profile --target $root" 2>/dev/null | grep -E 'Time|±|Benchmark' || true
fi
echo "goal: under 50 ms on 2 cores"
