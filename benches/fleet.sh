#!/usr/bin/env bash
# Fleet merge speed: `nodecheck report merge` over 10,000 node reports of
# ~50 checks, derived from a real run of profiles/compute.toml against the
# reference rootfs (NODECHECK_TEST_ROOTFS), or of profiles/nhc.toml on this
# node when it is not set. Prints the input size, wall time and peak RSS;
# the goal is <= 1 s and <= 300 MB.
#
#   NODES=10000 benches/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-10000}
[[ -n ${NO_BUILD:-} ]] || cargo build --release -q -p nodecheck-cli
bin=${CARGO_TARGET_DIR:-target}/release/nodecheck
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n ${NODECHECK_TEST_ROOTFS:-} ]]; then
  "$bin" run profiles/compute.toml -t "$NODECHECK_TEST_ROOTFS" --json "$work/base.json" >/dev/null || true
else
  "$bin" run profiles/nhc.toml --json "$work/base.json" >/dev/null || true
fi
checks=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(c["checks"]) for c in d["controls"]))' "$work/base.json")
bytes=$(python3 benches/fleet/generate.py "$work/base.json" "$work/reports" "$nodes")
echo "input: $nodes reports of $checks checks, $((bytes / 1048576)) MiB"
sync
# Warm the page cache once (the reports were just written), then measure.
cat "$work"/reports/*.json >/dev/null
rc=0
/usr/bin/time -f "%e %U %S %M" -o "$work/time" "$bin" report merge --expect "node[00001-$(printf %05d "$nodes")]" \
  --json "$work/fleet.json" "$work/reports" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
[[ $rc == 1 ]] || { cat "$work/err.txt"; echo "unexpected exit $rc (the injected failures should give 1)" >&2; exit 1; }
read -r secs user sys kib < <(tail -n 1 "$work/time")
echo "merge: ${secs} s wall (${user} s user + ${sys} s sys CPU), $((kib / 1024)) MB peak RSS (goal: <= 1 s, <= 300 MB)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (wall time is only meaningful on an idle machine)"
head -5 "$work/out.txt"
