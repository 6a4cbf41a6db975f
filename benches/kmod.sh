#!/usr/bin/env bash
# Kernel-module checks: nodecheck vs the seed's own approach.
#
# 100 modules of the reference rootfs's kernel, each checked with
# `loadable = true` by one `nodecheck run` (process start, profile load,
# modules.dep parse, and for each module its file, its dependency closure
# and every vermagic), against `modinfo -b ROOT -k KVER NAME` run in a loop
# for the same modules (what the seed's script does, and it only finds the
# module and prints its modinfo). Both are wall-clock times of the whole
# command, page cache warm, release build.
#
#   benches/kmod.sh [ROOTFS]      (default: $NODECHECK_TEST_ROOTFS)
#
# Needs: kmod (modinfo), hyperfine (optional: a plain loop is used without it).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/kmod.sh ROOTFS (or set NODECHECK_TEST_ROOTFS)}}
moddir=$(readlink -f "$root/lib/modules")
kver=$(ls "$moddir" | head -n1)
command -v modinfo >/dev/null || { echo "modinfo not found: apt-get install kmod" >&2; exit 2; }

cargo build --release --quiet -p nodecheck-cli
bin=${CARGO_TARGET_DIR:-target}/release/nodecheck

# The seed's nine modules, then 91 more sampled evenly over modules.dep so
# every area of the tree (drivers, fs, net, …) is represented.
seed=(mlx5_core mlx5_ib i40e xfs nfs nfsv4 ib_core ib_umad rdma_cm)
mapfile -t all < <(cut -d: -f1 "$moddir/$kver/modules.dep" | sed 's#.*/##; s/\.ko.*//; s/-/_/g' |
  grep -vxF -f <(printf '%s\n' "${seed[@]}"))
step=$(( ${#all[@]} / 91 ))
mods=("${seed[@]}")
for ((i = 0; ${#mods[@]} < 100; i += step)); do mods+=("${all[i]}"); done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  printf '[profile]\nname = "kmod-bench"\n[[control]]\nid = "modules"\n  [[control.kernel_module]]\n  name = ['
  printf '"%s", ' "${mods[@]}"
  printf ']\n  loadable = true\n'
} > "$work/bench.toml"
printf '%s\n' "${mods[@]}" > "$work/modules.txt"
cat > "$work/modinfo-loop.sh" <<LOOP
#!/bin/sh
while read -r m; do modinfo -b "$root" -k "$kver" "\$m" >/dev/null || exit 1; done < "$work/modules.txt"
LOOP
chmod +x "$work/modinfo-loop.sh"

# Both must succeed before their times mean anything.
"$bin" run "$work/bench.toml" --target "$root" --no-color > "$work/out.txt" ||
  { cat "$work/out.txt"; echo "nodecheck failed on the benchmark profile" >&2; exit 1; }
grep -q "100 successful" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
"$work/modinfo-loop.sh"

nodecheck_cmd="$bin run $work/bench.toml --target $root --no-color"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --min-runs 30 --style basic \
    --export-csv "$work/nc.csv" "$nodecheck_cmd" >&2
  hyperfine --warmup 1 --min-runs 5 --style basic \
    --export-csv "$work/mi.csv" "$work/modinfo-loop.sh" >&2
  # CSV: command,mean,stddev,median,user,system,min,max (seconds)
  nc_ms=$(awk -F, 'NR == 2 { printf "%.1f", $4 * 1000 }' "$work/nc.csv")
  mi_ms=$(awk -F, 'NR == 2 { printf "%.1f", $4 * 1000 }' "$work/mi.csv")
  how="median of hyperfine runs"
else
  best() { # best of N wall times in ms
    local n=$1 b=; shift
    for ((r = 0; r < n; r++)); do
      local s=$(date +%s%N); "$@" >/dev/null; local e=$(date +%s%N)
      local t=$(( (e - s) / 1000 ))
      [[ -z $b || $t -lt $b ]] && b=$t
    done
    awk -v u="$b" 'BEGIN { printf "%.1f", u / 1000 }'
  }
  nc_ms=$(best 20 $nodecheck_cmd)
  mi_ms=$(best 5 "$work/modinfo-loop.sh")
  how="best of a plain loop (hyperfine not installed)"
fi

echo
echo "kernel modules: 100 x loadable, $root (kernel $kver), $how"
printf '  %-58s %9s ms\n' "nodecheck run (1 process: closure + vermagic of each)" "$nc_ms"
printf '  %-58s %9s ms  (%s ms per module)\n' "modinfo -b ROOT -k KVER NAME loop (100 processes)" "$mi_ms" \
  "$(awk -v t="$mi_ms" 'BEGIN { printf "%.2f", t / 100 }')"
printf '  %-58s %9sx\n' "nodecheck speed-up" "$(awk -v a="$mi_ms" -v b="$nc_ms" 'BEGIN { printf "%.1f", a / b }')"
printf '  %-58s %9s\n' "goal" "<= 15 ms, >= 20x"
