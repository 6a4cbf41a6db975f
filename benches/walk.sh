#!/usr/bin/env bash
# Walking a whole /usr: nodecheck's fd-based parallel walker against find.
#
#   tree   `tree` over /usr (broken symlinks, world-writable entries,
#          setuid/setgid files), -xdev, vs the same tests in one find:
#            find ROOT/usr -xdev \( -xtype l -o -type f -perm -0002
#              -o -type d -perm -0002 ! -perm -1000 -o -type f -perm /6000 \)
#          (find resolves links against the host, nodecheck inside the
#          root: the same work, a stricter answer).
#   elf    the whole-/usr `elf` scan, files found by nodecheck itself,
#          vs libtree given the list of the same ELF files (in a chroot),
#          as in benches/elf.sh; `find + head -c 18` is the floor of
#          finding them with standard tools, and benches/sniff_floor.c
#          (built here when a C compiler is found) the floor of any tool
#          that finds them itself: only the getdents, open, fstat, pread
#          and close nodecheck's door makes per file, on one thread. Two
#          rows: every regular file sniffed (`candidates = "all"`), and
#          the candidate rule nodecheck applies by default (one fstatat
#          per file not named like a shared object; opened only when
#          executable: `candidates = "loadable"`).
#
#   benches/walk.sh [ROOTFS]      (default: $NODECHECK_TEST_ROOTFS)
#   NODECHECK_BIN=/path/to/nodecheck benches/walk.sh   (measure a build)
#   NODECHECK_BASE=/path/to/old/nodecheck benches/walk.sh
#       adds a before/after table: old, new and find/libtree run in
#       interleaved rounds (so load from other processes hits all alike),
#       medians of wall and CPU time.
#
# Wall-clock means of the whole command (process start included), page
# cache warm, release build; hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/walk.sh ROOTFS (or set NODECHECK_TEST_ROOTFS)}}
root=$(readlink -f "$root")
[[ $(id -u) == 0 ]] || { echo "needs root (chroot for libtree)" >&2; exit 2; }
for tool in hyperfine scanelf libtree; do
  command -v "$tool" >/dev/null || { echo "$tool not found: see tests/deps.sh" >&2; exit 2; }
done
if [[ -n ${NODECHECK_BIN:-} ]]; then
  bin=$(readlink -f "$NODECHECK_BIN")
else
  cargo build --release --quiet -p nodecheck-cli
  bin=$(readlink -f "${CARGO_TARGET_DIR:-target}/release/nodecheck")
fi

work=$(mktemp -d)
copy=$(mktemp -d -p "$(dirname "$root")" nodecheck-walk-bench-XXXXXX)
trap 'rm -rf "$work" "$copy"' EXIT
cp -al "$root/." "$copy"
cp "$(command -v libtree)" "$copy/tmp/nodecheck-libtree"

cat > "$work/tree.toml" <<'TOML'
[profile]
name = "walk-bench"
[[control]]
id = "usr"
  [[control.tree]]
  path            = "/usr"
  broken_symlinks = false
  world_writable  = false
  setuid          = ["/usr/bin/*", "/usr/sbin/*", "/usr/lib/**"]
TOML
cat > "$work/elf.toml" <<'TOML'
[profile]
name = "elf-bench"
[[control]]
id = "usr"
  [[control.elf]]
  path            = "/usr"
  recursive       = true
  resolves        = true
  symbol_versions = true
TOML
cat > "$work/find.sh" <<EOF
#!/bin/sh
find "$root/usr" -xdev \\( -xtype l -o -type f -perm -0002 -o -type d -perm -0002 ! -perm -1000 -o -type f -perm /6000 \\) -print > /dev/null
EOF
cat > "$work/sniff.sh" <<EOF
#!/bin/sh
find "$root/usr" -type f -print0 | xargs -0 head -qc 18 > /dev/null
EOF
{ scanelf -R -B -F '%F' -E ET_DYN "$root/usr"; scanelf -R -B -F '%F' -E ET_EXEC "$root/usr"; } 2>/dev/null |
  sed "s|^$root||" | sort > "$copy/tmp/nodecheck-files.txt"
cat > "$copy/tmp/nodecheck-libtree.sh" <<'EOF'
#!/bin/sh
xargs /tmp/nodecheck-libtree < /tmp/nodecheck-files.txt > /dev/null 2>&1
true
EOF
chmod +x "$work"/*.sh "$copy"/tmp/nodecheck-*.sh
floor=()
if command -v cc >/dev/null && cc -O2 -o "$work/sniff_floor" benches/sniff_floor.c; then
  floor=(-n "syscall floor, every file (C, 1 thread)" "$work/sniff_floor $root/usr"
         -n "syscall floor, candidates (C, 1 thread)" "$work/sniff_floor -c $root/usr")
fi

# Both must do their full work before their time means anything.
"$bin" run "$work/tree.toml" --target "$root" --no-color > "$work/tree.out" || true
grep -q 'tree /usr' "$work/tree.out" || { cat "$work/tree.out"; echo "tree did not run" >&2; exit 1; }
"$bin" run "$work/elf.toml" --target "$root" --no-color --json "$work/elf.json" > "$work/elf.out" ||
  { cat "$work/elf.out"; echo "nodecheck elf failed on /usr" >&2; exit 1; }

entries=$(find "$root/usr" -xdev | wc -l)
elves=$(wc -l < "$copy/tmp/nodecheck-files.txt")
printf 'walk of %s/usr: %s entries, %s ELF files; %s, %s CPUs, load %s\n' "$root" "$entries" "$elves" "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
# What the scan examined and skipped (the check's output says it).
/usr/bin/python3 - "$work/elf.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))["controls"][0]["checks"][0].get("output", "")
print(out[out.find("files under"):].rstrip() if "files under" in out else "(no file counts in the output)")
PY
printf 'nodecheck: %s\n\n' "$bin"
# The floor must apply nodecheck's rule, or its row means nothing.
if [[ ${#floor[@]} -gt 0 ]]; then
  ours=$(grep -o '[0-9]* files examined' "$work/elf.json" | head -1 | cut -d' ' -f1 || true)
  theirs=$("$work/sniff_floor" -c "$root/usr" | sed -n 's/.*, \([0-9]*\) examined,.*/\1/p')
  [[ -z $ours || $ours == "$theirs" ]] ||
    { echo "sniff_floor -c examined $theirs files, nodecheck $ours: their candidate rules differ" >&2; exit 1; }
fi
hyperfine -N -i --warmup 3 --runs "${RUNS:-20}" --style none \
  -n "nodecheck tree /usr" "$bin run $work/tree.toml --target $root --no-color" \
  -n "find /usr -xdev (same tests)" "$work/find.sh" \
  -n "nodecheck elf /usr" "$bin run $work/elf.toml --target $root --no-color" \
  -n "libtree, given the ELF list (chroot)" "chroot $copy /tmp/nodecheck-libtree.sh" \
  -n "find + head -c 18 (walk + sniff)" "$work/sniff.sh" \
  "${floor[@]}" \
  --export-json "$work/h.json" > /dev/null 2>&1
# Wall time and CPU time (user + system, all threads): on a busy machine
# the CPU time is the steadier measure of the work done.
/usr/bin/python3 - "$work/h.json" <<'PY'
import json, sys
print(f"{'command':40s} {'wall median':>12s} {'wall min':>10s} {'cpu mean':>10s}")
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    print(f"{r['command']:40s} {t[len(t)//2]*1e3:9.1f} ms {t[0]*1e3:7.1f} ms {(r['user']+r['system'])*1e3:7.1f} ms")
PY

if [[ -n ${NODECHECK_BASE:-} ]]; then
  base=$(readlink -f "$NODECHECK_BASE")
  printf '\nbefore/after, %s interleaved rounds (base: %s)\n' "${ROUNDS:-15}" "$base"
  /usr/bin/python3 - "${ROUNDS:-15}" <<PY
import resource, statistics, subprocess, sys, time
cmds = {
    "base tree /usr": "$base run $work/tree.toml --target $root --no-color",
    "new tree /usr": "$bin run $work/tree.toml --target $root --no-color",
    "find /usr -xdev (same tests)": "$work/find.sh",
    "base elf /usr": "$base run $work/elf.toml --target $root --no-color",
    "new elf /usr": "$bin run $work/elf.toml --target $root --no-color",
    "libtree (chroot)": "chroot $copy /tmp/nodecheck-libtree.sh",
}
if "${floor[*]}":
    cmds["floor, candidates (C, 1 thread)"] = "$work/sniff_floor -c $root/usr"
res = {k: ([], []) for k in cmds}
for _ in range(int(sys.argv[1])):
    for k, c in cmds.items():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(c.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res[k][0].append(t * 1e3)
        res[k][1].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3)
print(f"{'command':32s} {'wall median':>12s} {'cpu median':>12s}")
for k, (w, c) in res.items():
    print(f"{k:32s} {statistics.median(w):9.1f} ms {statistics.median(c):9.1f} ms")
PY
fi
