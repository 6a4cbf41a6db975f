#!/usr/bin/env bash
# What running the image's own programs costs.
#
# 1. Per command: setting up and tearing down nodecheck's sandbox (helper
#    forked by the zygote, mount/pid/net/ipc/uts namespaces, read-only bind + overlay
#    with a tmpfs upper, /proc, /dev, /sys, /tmp, pivot_root, caps) around
#    `/bin/sh -c true` in the image, against the same command under plain
#    `chroot` and under `unshare ... chroot` (namespaces alone, no overlay).
# 2. The compute profile's exec checks (compilers, MPI, module system:
#    `--tags toolchain`) end to end, with --jobs 1 and --jobs 2.
#
#   benches/exec.sh [ROOTFS]        # as root; RUNS=500 for steadier figures
#
# Timings on a shared machine are noisy: read the medians and minimums
# side by side, not one number alone. The sandbox hands each command over
# more processes than chroot does (zygote, helper, init, program), and on a
# busy machine every hand-over waits for a CPU: FIFO=1 also runs the
# in-process measurement at SCHED_FIFO priority 1 (a few seconds), which
# shows the cost without that wake-up latency.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:-$(tests/rootfs/build.sh)}}
runs=${RUNS:-200}
target_dir=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p nodecheck-cli
cargo build --release -q -p nodecheck-core --example exec_bench
nodecheck=$target_dir/release/nodecheck

echo "== per command, measured in one process"
"$target_dir/release/examples/exec_bench" "$root" "$runs"
if [ "${FIFO:-0}" = 1 ]; then
  echo
  echo "== per command, measured in one process, at SCHED_FIFO 1"
  chrt -f 1 "$target_dir/release/examples/exec_bench" "$root" "$runs"
fi

echo
echo "== per command, as separate programs (hyperfine)"
hyperfine -N --warmup 10 --runs "$runs" \
  -n "chroot" "chroot $root /bin/sh -c true" \
  -n "unshare -mpniu + chroot" "unshare -m -p -n -i -u -f chroot $root /bin/sh -c true" \
  2>&1 | grep -E '^Benchmark|Time \(mean'

echo
echo "== compute profile, exec checks only (--tags toolchain: 3 compilers, 2 MPI, module system)"
hyperfine --warmup 1 --runs "${PROFILE_RUNS:-5}" \
  -n "jobs=1" "$nodecheck run profiles/compute.toml --target $root --tags toolchain --jobs 1" \
  -n "jobs=2" "$nodecheck run profiles/compute.toml --target $root --tags toolchain --jobs 2" \
  2>&1 | grep -E '^Benchmark|Time \(mean|Range'
