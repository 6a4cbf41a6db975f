#!/usr/bin/env bash
# Builds every fuzz target (each [[bin]] of fuzz/Cargo.toml) once, with
# the stable toolchain, and runs each for FUZZ_SECONDS from its seed corpus
# fuzz/corpus/<target>/. A panic, a hang past FUZZ_TIMEOUT seconds on one
# input, more than FUZZ_RSS_MB resident or a single allocation over
# FUZZ_MALLOC_LIMIT_MB fails the run, naming the input that did it and
# the command that replays it. Arguments: the targets to run (default:
# all). tests/all.sh runs it after the test suite; a longer run of one:
#
#   FUZZ_SECONDS=600 tests/fuzz.sh image_archive
#
# libFuzzer's coverage instrumentation comes from stable codegen flags
# (the LLVM SanitizerCoverage pass and its options), the same ones
# cargo-fuzz passes, without its nightly-only sanitizer: a target finds
# panics (arithmetic overflow and debug assertions included), aborts,
# hangs and memory blow-ups, not undefined behaviour in unsafe code.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-10}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
export FUZZ_MALLOC_LIMIT_MB=${FUZZ_MALLOC_LIMIT_MB:-1024}
start=$SECONDS

export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS reach only the target's code, not
# build scripts and proc macros (which need no coverage).
host=$(rustc -vV | sed -n 's/^host: //p')

# The target directory, kept between runs under /var/cache/nodecheck and
# keyed by fuzz/Cargo.lock, the compiler and the flags: cargo keys every
# registry dependency's artifact by version, flags and compiler, so a
# kept one is never reused for other inputs. For this workspace's own
# crates (nodecheck-core, -checks, the targets) cargo trusts file times,
# which a checkout or an unpacked tarball can set to the past; so those
# are rebuilt whenever their sources' content differs from the last
# build's, whatever the times say.
if [[ -z ${FUZZ_TARGET_DIR:-} ]]; then
  cache=/var/cache/nodecheck
  if mkdir -p "$cache" 2>/dev/null && [[ -w $cache ]]; then
    key=$({
      cat Cargo.lock
      rustc -vV
      echo "$RUSTFLAGS"
    } | sha256sum | cut -c1-16)
    FUZZ_TARGET_DIR=$cache/fuzz-target-$key
    mkdir -p "$FUZZ_TARGET_DIR"
    touch "$FUZZ_TARGET_DIR"
    # Older keys (another lock or compiler) unused for two hours: longer
    # than a CI run that might still be building in one.
    find "$cache" -maxdepth 1 -name 'fuzz-target-*' ! -name "fuzz-target-$key" \
      -mmin +120 -exec rm -rf {} +
  else
    FUZZ_TARGET_DIR=$PWD/target
  fi
fi
mkdir -p "$FUZZ_TARGET_DIR"
sources=$(cd .. && find Cargo.toml crates fuzz \( -path fuzz/target -o -path fuzz/artifacts \
  -o -path fuzz/corpus \) -prune -o -type f -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-64)
stamp=$FUZZ_TARGET_DIR/nodecheck-sources.sha256
if [[ $(cat "$stamp" 2>/dev/null) != "$sources" ]]; then
  rm -f "$stamp"
  rm -rf "$FUZZ_TARGET_DIR/$host/release/.fingerprint/"nodecheck-*
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fuzz: building into $FUZZ_TARGET_DIR"
bins=()
[[ $# -eq 0 ]] && bins=(--bins) || for t in "$@"; do bins+=(--bin "$t"); done
if ! cargo build --release --locked --target "$host" --target-dir "$FUZZ_TARGET_DIR" \
  --message-format=json-render-diagnostics "${bins[@]}" >"$work/build.json"; then
  echo "fuzz: the build failed. If cargo says fuzz/Cargo.lock needs updating, a crate the" \
    "targets use changed its dependencies: run \`cargo update --workspace\` in fuzz/ and" \
    "commit fuzz/Cargo.lock with that change." >&2
  exit 1
fi
echo "$sources" >"$stamp"
# The built executables, from cargo's own account (every [[bin]], new ones
# included, fresh or rebuilt).
mapfile -t executables < <(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$work/build.json")
((${#executables[@]})) || {
  echo "fuzz: cargo built no fuzz target" >&2
  exit 1
}
# The allocation cap (fuzz/src/lib.rs) is in a target only if it names
# the crate: a target without it would miss what a bogus size reserves.
for exe in "${executables[@]}"; do
  if ! nm -C "$exe" | grep 'nodecheck_fuzz::LIMIT' >/dev/null; then
    echo "fuzz: $(basename "$exe") lacks the allocation cap: add \`use nodecheck_fuzz as _;\`" >&2
    exit 1
  fi
done
built=$((SECONDS - start))
echo "fuzz: built ${#executables[@]} targets in ${built}s"

failed=()
for exe in "${executables[@]}"; do
  t=$(basename "$exe")
  seeds=$PWD/corpus/$t
  artifacts=$PWD/artifacts/$t
  mkdir -p "$artifacts" "$work/$t"
  corpora=("$work/$t") # what the run finds goes here, not into the seeds
  if [[ -d $seeds ]]; then
    corpora+=("$seeds")
  else
    echo "fuzz: warning: $t has no seeds (fuzz/corpus/$t): it starts from nothing" >&2
  fi
  touch "$work/$t.start"
  log=$work/$t.log
  rc=0
  RUST_BACKTRACE=1 "$exe" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${corpora[@]}" >"$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t: ok, ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?} edges"
  else
    tail -n 40 "$log"
    mapfile -t found < <(find "$artifacts" -type f -newer "$work/$t.start")
    echo "fuzz: $t FAILED (exit $rc)"
    for f in "${found[@]}"; do
      echo "fuzz:   reproducer: $f"
      echo "fuzz:   replay:     $exe $f"
    done
    ((${#found[@]})) || echo "fuzz:   no reproducer written: see the log above"
    failed+=("$t")
  fi
done

echo "fuzz: ${#executables[@]} targets, ${seconds}s each, $((SECONDS - start))s in all (build ${built}s)"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
