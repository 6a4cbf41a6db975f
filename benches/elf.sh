#!/usr/bin/env bash
# ELF linkage of a whole /usr: nodecheck vs lddtree, ldd and libtree.
#
# nodecheck checks every ELF file under /usr of the reference rootfs
# (`elf` with `path = "/usr"`, `recursive`, `resolves`, `symbol_versions`):
# it walks the ~21,000 files itself, sniffs each one, and loads the ~1,500
# ELF programs and libraries as ld.so would, inside the root. The peers are
# given the list of those ELF files (found beforehand by scanelf, whose own
# time is printed too, since they cannot find the files themselves):
#
#   lddtree -R ROOT FILES...          pax-utils (Python), root-aware
#   ldd FILE, in a chroot, per file   the image's ld.so in trace mode
#   libtree FILES..., in a chroot     C, no root option
#
# All are wall-clock times of the whole command, page cache warm, release
# build; ratios are the peer's time over nodecheck's. Two references for
# the part only nodecheck does: scanelf -R (how the peers' list is found)
# and find + head (walking /usr and reading the first bytes of each file).
#
#   benches/elf.sh [ROOTFS]      (default: $NODECHECK_TEST_ROOTFS)
#
# Needs root (chroot, and a hard-linked copy of the rootfs next to it for
# libtree), pax-utils and python3-pyelftools (lddtree, scanelf), libtree,
# and hyperfine (optional: plain loops are used without it).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/elf.sh ROOTFS (or set NODECHECK_TEST_ROOTFS)}}
root=$(readlink -f "$root")
[[ $(id -u) == 0 ]] || { echo "needs root (chroot)" >&2; exit 2; }
for tool in scanelf libtree; do
  command -v "$tool" >/dev/null || { echo "$tool not found: see tests/deps.sh" >&2; exit 2; }
done
/usr/bin/python3 -c 'import elftools' 2>/dev/null ||
  { echo "lddtree needs python3-pyelftools: see tests/deps.sh" >&2; exit 2; }

cargo build --release --quiet -p nodecheck-cli
bin=$(readlink -f "${CARGO_TARGET_DIR:-target}/release/nodecheck")

work=$(mktemp -d)
# libtree is a host binary (it links only libc) run inside a copy of the
# image, since it has no root option; the copy shares the image's files.
copy=$(mktemp -d -p "$(dirname "$root")" nodecheck-elf-bench-XXXXXX)
trap 'rm -rf "$work" "$copy"' EXIT
cp -al "$root/." "$copy"
cp "$(command -v libtree)" "$copy/tmp/nodecheck-libtree"

cat > "$work/usr.toml" <<'TOML'
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

# The ELF executables and shared objects under /usr, for the peers.
scan() { scanelf -R -B -F '%F' -E ET_DYN "$1/usr"; scanelf -R -B -F '%F' -E ET_EXEC "$1/usr"; }
scan "$root" 2>/dev/null | sed "s|^$root||" | sort > "$work/files.txt"
nfiles=$(wc -l < "$work/files.txt")
cp "$work/files.txt" "$copy/tmp/nodecheck-files.txt"

cat > "$work/lddtree.sh" <<EOF
#!/bin/sh
xargs /usr/bin/python3 /usr/bin/lddtree -R "$root" < "$work/files.txt" > /dev/null 2>&1 || true
EOF
cat > "$copy/tmp/nodecheck-ldd.sh" <<'EOF'
#!/bin/sh
while read -r f; do ldd "$f" > /dev/null 2>&1; done < /tmp/nodecheck-files.txt
true
EOF
cat > "$copy/tmp/nodecheck-libtree.sh" <<'EOF'
#!/bin/sh
xargs /tmp/nodecheck-libtree < /tmp/nodecheck-files.txt > /dev/null 2>&1
true
EOF
cat > "$work/scanelf.sh" <<EOF
#!/bin/sh
scanelf -R -B -F '%F' -E ET_DYN "$root/usr" > /dev/null 2>&1
EOF
# The floor of finding the files: walk /usr and read 18 bytes of each.
cat > "$work/sniff.sh" <<EOF
#!/bin/sh
find "$root/usr" -type f -print0 | xargs -0 head -qc 18 > /dev/null
EOF
chmod +x "$work"/*.sh "$copy"/tmp/nodecheck-*.sh

# nodecheck must pass before its time means anything; it says how many
# files it checked.
"$bin" run "$work/usr.toml" --target "$root" --no-color --json "$work/out.json" > "$work/out.txt" ||
  { cat "$work/out.txt"; echo "nodecheck failed on /usr" >&2; exit 1; }
checked=$(grep -o 'all [0-9]* ELF files under /usr' "$work/out.json" | head -n1 | tr -dc 0-9)

# name, command, runs
benches=(
  "nodecheck|$bin run $work/usr.toml --target $root --no-color|30"
  "libtree (chroot)|chroot $copy /tmp/nodecheck-libtree.sh|30"
  "scanelf -R (finding the files)|$work/scanelf.sh|10"
  "find + head -c 18 (walk + sniff)|$work/sniff.sh|10"
  "ldd loop (chroot)|chroot $copy /tmp/nodecheck-ldd.sh|3"
  "lddtree -R|$work/lddtree.sh|3"
)
declare -A mean
for b in "${benches[@]}"; do
  IFS='|' read -r name cmd runs <<< "$b"
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs "$runs" --style none --export-json "$work/h.json" "$cmd" > /dev/null 2>&1
    mean[$name]=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/h.json")
  else
    start=$(date +%s.%N)
    for ((i = 0; i < runs; i++)); do $cmd > /dev/null 2>&1 || true; done
    mean[$name]=$(echo "($(date +%s.%N) - $start) / $runs" | bc -l)
  fi
done

base=${mean[nodecheck]}
printf '\nELF linkage of /usr: %s ELF files (%s checked by nodecheck), %s\n' \
  "$nfiles" "${checked:-?}" "$root"
printf '%s, %s CPUs\n\n' "$(uname -r)" "$(nproc)"
printf '%-32s %12s %14s\n' "tool" "mean" "vs nodecheck"
for b in "${benches[@]}"; do
  IFS='|' read -r name _ _ <<< "$b"
  t=${mean[$name]}
  printf '%-32s %10.1f ms %13.1fx\n' "$name" "$(echo "$t * 1000" | bc -l)" "$(echo "$t / $base" | bc -l)"
done
cat <<'NOTE'

nodecheck's time includes finding the ELF files (walking /usr and reading
the first bytes of each of its ~21,000 files, which alone costs what the
find + head line shows); the peers are handed the list. nodecheck also
parses the image's ld.so.cache, follows RPATH/RUNPATH/$ORIGIN inside the
root and checks every symbol version; libtree does neither of the last two
and runs in a chroot.
NOTE
