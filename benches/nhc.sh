#!/usr/bin/env bash
# Node health check speed: `nodecheck nhc` with profiles/nhc.toml against
# the same checks written as an NHC-style shell script
# (benches/nhc/nhc-style.sh), on this machine, process start included.
# Printed side by side with the ratio. Run as root (the daemons are checked
# to run as root).
#
# Where sshd, munged or slurmd do not run, stand-ins of that name (copies of
# sleep) run for the length of the benchmark, so that both sides see a
# healthy node and do all of their work.
#
#   benches/nhc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nodecheck-cli
bin=${CARGO_TARGET_DIR:-target}/release/nodecheck
profile=profiles/nhc.toml
script=benches/nhc/nhc-style.sh
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for d in sshd munged slurmd; do
  if ! pgrep -x "$d" >/dev/null; then
    cp /bin/sleep "$work/$d"
    "$work/$d" 3600 &
    pids+=($!)
  fi
done
[[ $(id -u) == 0 ]] || echo "warning: not root: the stand-ins do not run as root and the sshd/slurmd checks fail" >&2

nodecheck=("$bin" nhc --profile "$profile" --no-slurm)
if ! "${nodecheck[@]}" >"$work/nodecheck.out"; then
  cat "$work/nodecheck.out"
  echo "the node is not healthy for nodecheck: fix that first" >&2
  exit 1
fi
if ! bash "$script" >"$work/script.out"; then
  cat "$work/script.out"
  echo "the node is not healthy for the NHC-style script: fix that first" >&2
  exit 1
fi
checks=$("$bin" list "$profile" | grep -c '^    ')
props=$("$bin" list "$profile" | grep '^    ' | sed 's/.*: //' | tr ',' '\n' | grep -c .)
echo "profile: $profile, $checks checks asserting $props properties; NHC-style script: $(grep -cE '^check_[a-z_]+( |$)' "$script") checks"

# In-process time of the checks, as nodecheck reports it.
inproc=$(for _ in $(seq 30); do "${nodecheck[@]}" | sed -n 's/.* in \([0-9.]*\) \{0,1\}ms .*/\1/p'; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

runs=100
mean_ms() { # command... -> mean and stddev of wall time in ms
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" "$*" >/dev/null 2>&1
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f %.2f" % (r["mean"]*1e3, r["stddev"]*1e3))' "$work/h.json"
  else
    local start end
    start=$(date +%s%N)
    for _ in $(seq $runs); do "$@" >/dev/null || true; done
    end=$(date +%s%N)
    awk -v ns=$((end - start)) -v n=$runs 'BEGIN { printf "%.2f -\n", ns / n / 1e6 }'
  fi
}
read -r nc_mean nc_sd < <(mean_ms "${nodecheck[@]}")
read -r sh_mean sh_sd < <(mean_ms bash "$script")
read -r sl_mean sl_sd < <(mean_ms "$bin" nhc --profile "$profile" --dry-run)

printf '\n%-44s %12s %10s\n' "full healthy run, all checks (wall, mean)" "ms" "± ms"
printf '%-44s %12s %10s\n' "nodecheck nhc --no-slurm" "$nc_mean" "$nc_sd"
printf '%-44s %12s %10s\n' "NHC-style shell script" "$sh_mean" "$sh_sd"
printf '%-44s %12s %10s\n' "nodecheck nhc, with its scontrol query" "$sl_mean" "$sl_sd"
printf '%-44s %12s\n' "nodecheck checks alone (in-process, median)" "$inproc"
awk -v a="$sh_mean" -v b="$nc_mean" 'BEGIN { printf "\nratio NHC-style script / nodecheck: %.1fx\n", a / b }'
awk -v b="$nc_mean" 'BEGIN { printf "ratio LBNL NHC 1.4.3 reference (380 ms, 24 checks) / nodecheck: %.1fx\n", 380 / b }'
echo "goal: a full healthy run under 20 ms (>= 19x NHC)"
