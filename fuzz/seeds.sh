#!/usr/bin/env bash
# Remakes the checked-in seed corpora (fuzz/corpus/<target>/) from real
# artifacts: files of the reference Debian rootfs, and archives, caches
# and snapshots made from a few of its files by the real tools (cpio, tar,
# gzip, zstd, xz, lz4, bzip2, ldconfig, gcc, podman, nodecheck snapshot). Each
# seed stays a few KB: libFuzzer mutates small inputs faster, and the
# fuzzer grows the rest. As root (device nodes, owners), with
# NODECHECK_TEST_ROOTFS set and a nodecheck binary at $NODECHECK (default:
# target/debug/nodecheck). tests/fuzz.sh runs from these; it does not
# need this script. Inputs that once crashed a target (crash-*) are kept
# beside the seeds, so every CI run replays them; this script leaves them.
set -euo pipefail
cd "$(dirname "$0")"
root=${NODECHECK_TEST_ROOTFS:?set NODECHECK_TEST_ROOTFS to the reference rootfs}
nodecheck=${NODECHECK:-../target/debug/nodecheck}
corpus=$PWD/corpus
find "$corpus" -type f ! -name 'crash-*' -delete 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed() { # TARGET NAME < bytes
  mkdir -p "$corpus/$1"
  cat >"$corpus/$1/$2"
}

# A tiny tree from the reference rootfs with every entry type the readers
# know: files with owners and a setuid bit, a directory, a symlink, a hard
# link, a FIFO, a character device, a long name (GNU/PAX long-name paths).
tree=$work/tree
mkdir -p "$tree"/{etc,usr/bin,usr/sbin,root,dev}
cp -p "$root"/etc/{passwd,group,os-release,hostname} "$tree/etc/"
printf '#!/bin/sh\nexec /usr/sbin/init\n' >"$tree/init"
chmod 755 "$tree/init"
printf 'x\n' >"$tree/usr/bin/su"
chown 0:0 "$tree/usr/bin/su"
chmod 4755 "$tree/usr/bin/su"
ln "$tree/usr/bin/su" "$tree/usr/bin/su-link"
printf 'x\n' >"$tree/root/.profile"
chown 1000:1000 "$tree/root/.profile"
ln -s usr/bin "$tree/bin"
ln -s ../../../etc/passwd "$tree/usr/sbin/outside"
mkfifo "$tree/dev/initctl"
mknod "$tree/dev/null" c 1 3
long=$tree/usr/$(printf 'l%.0s' {1..60})/$(printf 'n%.0s' {1..60})
mkdir -p "$(dirname "$long")"
printf 'long\n' >"$long"
# Two packages of the real dpkg database, for the snapshot's package list.
mkdir -p "$tree/var/lib/dpkg"
awk 'BEGIN { RS = ""; ORS = "\n\n" } /^Package: (base-files|munge)\n/' \
  "$root/var/lib/dpkg/status" >"$tree/var/lib/dpkg/status"
setcap cap_net_raw+ep "$tree/usr/bin/su"

# Packed images, from the tree by the real tools. image_archive reads its
# first byte as the reader to force (0: sniff by magic, 1: cpio, 2: tar).
# The tree but its package database (the snapshot's), in a stable order.
entries() { find . -path ./var -prune -o -print | LC_ALL=C sort; }
(cd "$tree" && entries | cpio --quiet -o -H newc) >"$work/newc.cpio"
(cd "$tree" && entries | cpio --quiet -o -H crc) >"$work/crc.cpio"
(cd "$tree" && entries | cpio --quiet -o -H odc) >"$work/odc.cpio"
# Tar spends a 512-byte block on every header: a few entries only (a
# setuid file with a capability, its hard link, a symlink, a device, a
# long name).
small=(./etc/hostname ./usr/bin/su ./usr/bin/su-link ./bin ./dev/null "./${long#"$tree"/}")
(cd "$tree" && tar --xattrs --no-recursion -b1 -cf - "${small[@]}") >"$work/gnu.tar"
(cd "$tree" && tar --xattrs --format=pax --pax-option=delete=atime,delete=ctime \
  --no-recursion -b1 -cf - "${small[@]}") >"$work/pax.tar"
# An early uncompressed cpio (as the microcode one), then the main one.
mkdir -p "$work/early/kernel/x86/microcode"
printf 'ucode' >"$work/early/kernel/x86/microcode/GenuineIntel.bin"
(cd "$work/early" && find . | cpio --quiet -o -H newc) >"$work/early.cpio"
arch() { { printf '%b' "$1"; cat "$2"; } | seed image_archive "$3"; }
arch '\x00' "$work/newc.cpio" newc.cpio
arch '\x01' "$work/crc.cpio" crc.cpio
arch '\x01' "$work/odc.cpio" odc.cpio
arch '\x00' "$work/gnu.tar" gnu.tar
arch '\x02' "$work/pax.tar" pax.tar
gzip -9n <"$work/newc.cpio" | arch '\x00' /dev/stdin newc.cpio.gz
zstd -q19 <"$work/newc.cpio" | arch '\x00' /dev/stdin newc.cpio.zst
xz -9 --check=crc32 <"$work/newc.cpio" | arch '\x00' /dev/stdin newc.cpio.xz
lz4 -q -l -9 <"$work/newc.cpio" | arch '\x00' /dev/stdin newc.cpio.lz4
bzip2 -9 <"$work/newc.cpio" | arch '\x00' /dev/stdin newc.cpio.bz2
gzip -9n <"$work/pax.tar" | arch '\x00' /dev/stdin pax.tar.gz
{ cat "$work/early.cpio"; gzip -9n <"$work/newc.cpio"; } | arch '\x00' /dev/stdin early+main.cpio

# image_stream: its first byte picks a magic to put in front; 3 puts none,
# so a whole real lz4 (frame, legacy) or bzip2 stream follows as it is.
stream() { { printf '\x03'; cat; } | seed image_stream "$1"; }
lz4 -q -l -9 <"$work/newc.cpio" | stream newc.cpio.lz4-legacy
lz4 -q -9 <"$work/newc.cpio" | stream newc.cpio.lz4-frame
bzip2 -9 <"$work/newc.cpio" | stream newc.cpio.bz2

# image_squashfs: the tiny tree by the real mksquashfs, small blocks so
# that files span several; gzip, xz, zstd, lz4 and lzo.
for comp in gzip xz zstd lz4 lzo; do
  mksquashfs "$tree" "$work/tiny.$comp.sqfs" -comp "$comp" -b 4096 -noappend -quiet -no-progress >/dev/null
  seed image_squashfs "tiny.$comp.sqfs" <"$work/tiny.$comp.sqfs"
done

# OCI images, built and saved by podman (private storage, removed after):
# a FROM scratch image of two layers, the second with a whiteout and an
# opaque directory, and a config with every field the image kind reads.
# oci_archive reads its first byte as the form (even: oci-archive, odd:
# docker-archive; bit 1: ask for the image by reference).
oci=$work/oci
mkdir -p "$oci/l1/etc" "$oci/l1/usr/bin" "$oci/l2/etc" "$oci/l2/usr"
head -n 2 "$root/etc/passwd" >"$oci/l1/etc/passwd"
cp "$root/etc/hostname" "$oci/l1/etc/"
printf '#!/bin/sh\n' >"$oci/l1/usr/bin/tool"
chmod 4755 "$oci/l1/usr/bin/tool"
ln -s usr/bin "$oci/l1/bin"
touch "$oci/l2/etc/.wh.hostname" "$oci/l2/usr/.wh..wh..opq"
(cd "$oci/l1" && tar -cf ../l1.tar .)
(cd "$oci/l2" && tar -cf ../l2.tar .)
cat >"$oci/Containerfile" <<'EOF'
FROM scratch
ADD l1.tar /
ADD l2.tar /
ENV PATH=/usr/bin LANG=C.UTF-8
USER 1000:1000
WORKDIR /etc
ENTRYPOINT ["/usr/bin/tool"]
CMD ["-v"]
LABEL org.opencontainers.image.title=fuzzseed
EXPOSE 8080/tcp
EOF
podman=(podman --root "$oci/storage" --runroot "$oci/run" --storage-driver vfs)
"${podman[@]}" build -q -t localhost/fuzzseed:1 "$oci" >/dev/null
"${podman[@]}" save -q --format oci-archive -o "$oci/oci.tar" localhost/fuzzseed:1
"${podman[@]}" save -q --format docker-archive -o "$oci/docker.tar" localhost/fuzzseed:1
"${podman[@]}" rmi -a -f >/dev/null
{ printf '\x00'; cat "$oci/oci.tar"; } | seed oci_archive oci-archive
{ printf '\x03'; cat "$oci/docker.tar"; } | seed oci_archive docker-archive

# The ELF readers: a real shared library and a real (small, versioned)
# program of the rootfs, and a program its gcc makes.
cp "$root/usr/lib/x86_64-linux-gnu/security/pam_deny.so" "$work/lib.so"
seed elf_object pam_deny.so <"$work/lib.so"
seed elf_load pam_deny.so <"$work/lib.so"
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >"$work/hi.c"
# -z noseparate-code: no page of padding between segments, a 6 KB file.
gcc -Os -s -Wl,-z,noseparate-code -Wl,--hash-style=both -o "$work/hi" "$work/hi.c"
seed elf_object hi <"$work/hi"
seed elf_load hi <"$work/hi"
gcc -Os -s -shared -fPIC -Wl,-z,noseparate-code -Wl,-soname,libhi.so.1 \
  -o "$work/libhi.so" "$work/hi.c"
seed elf_object libhi.so <"$work/libhi.so"
# A real module's object file is an ELF too (relocatable).
module=$(find "$root/usr/lib/modules" -name crc7.ko | head -1)
seed elf_object crc7.ko <"$module"

# ld.so.cache: ldconfig's own output over a small root holding a few
# libraries of the reference rootfs (the real cache is 16 KB).
ld=$work/ldroot
mkdir -p "$ld/etc" "$ld/usr/lib/x86_64-linux-gnu" "$ld/usr/local/lib"
printf '/usr/local/lib\n' >"$ld/etc/ld.so.conf"
for l in libz.so.1 libcrypt.so.1 libmunge.so.2; do
  cp -L "$root/usr/lib/x86_64-linux-gnu/$l" "$ld/usr/lib/x86_64-linux-gnu/"
done
cp "$work/libhi.so" "$ld/usr/local/lib/libhi.so.1"
ldconfig -r "$ld"
seed ld_so_cache small.cache <"$ld/etc/ld.so.cache"
seed elf_load small.cache <"$ld/etc/ld.so.cache"

# Kernel modules, as distributions ship them: the rootfs's smallest
# module, compressed by xz (RHEL, Debian's later kernels), zstd (Ubuntu,
# Fedora) and gzip.
xz -q --check=crc32 --lzma2=dict=1MiB <"$module" | seed modinfo crc7.ko.xz
zstd -q19 <"$module" | seed modinfo crc7.ko.zst
gzip -9n <"$module" | seed modinfo crc7.ko.gz

# A snapshot of the tiny tree by nodecheck itself, and its JSON (the
# snapshot target wraps input that is not a snapshot file as the JSON of
# one, past the digest).
"$nodecheck" snapshot -o "$work/tree.snap" "$tree" >/dev/null
seed snapshot tree.snap <"$work/tree.snap"
# Magic (8 bytes), version (4), BLAKE3 (32), then one zstd frame of JSON.
tail -c +45 "$work/tree.snap" | zstd -qdc | seed snapshot tree.json

ls -l "$corpus"/*
