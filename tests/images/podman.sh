#!/usr/bin/env bash
# Builds the reference rootfs ROOT into an OCI image with the real
# `podman build` and writes it out in the three forms nodecheck reads, for
# tests/e2e/images.rs and benches/image.sh. Prints the directory holding
# them (last line of stdout):
#
#   tests/images/podman.sh ROOT [TAR]
#
# TAR, when given, is ROOT already packed by `tar --xattrs --numeric-owner`
# (tests/images/pack.sh's rootfs.tar): hard-linked into the build context
# instead of packing ROOT a second time (1.2 GB of disk and a minute).
#
#   DIR/oci/                 OCI image layout (podman save --format oci-dir:
#                            gzip layers, decompressed into a spill file)
#   DIR/oracle.oci.tar       oci-archive (gzip layers)
#   DIR/oracle.docker.tar    docker-archive (plain tar layers: read in place)
#
# DIR is /var/cache/nodecheck/images-podman-KEY, KEY from ROOT's path, this
# script and podman's version; it is made once (minutes) and reused.
#
# The Containerfile is `FROM scratch`, ADDs ROOT as a tarball (layer 1),
# deletes one file of it in a second layer (`RUN rm`: a whiteout, and the
# image's /bin/sh runs), and sets the config (ENV, LABEL, USER, WORKDIR,
# EXPOSE, ENTRYPOINT, CMD) that the `image` kind checks. The deleted file,
# $GONE below, is one no bundled profile looks at.
#
# Offline and rootful: no registry is reachable (`--pull=never`, `FROM
# scratch`, `--network none`), and podman runs on a private storage root
# and runroot in a temporary directory, removed at the end, so the host's
# podman store is never touched. Needs: podman (with runc or crun), tar.
set -euo pipefail
root=$(realpath "${1:?usage: tests/images/podman.sh ROOT [TAR]}")
tarball=${2:-}
GONE=usr/share/common-licenses/Artistic
TAG=localhost/nodecheck-oracle:1

[ -e "$root/$GONE" ] || { echo "podman.sh: $root/$GONE is missing (the file the second layer deletes)" >&2; exit 2; }
key=$( { printf '%s\n' "$root"; cat "$0"; podman --version; } | sha256sum | cut -c1-16)
out=/var/cache/nodecheck/images-podman-$key
if [ -e "$out/done" ]; then
  echo "$out"
  exit 0
fi
mkdir -p /var/cache/nodecheck
# Two test processes may want it at once: one builds, the other waits.
exec 9>"$out.lock"
flock 9
if [ -e "$out/done" ]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d /var/tmp/nodecheck-podman.XXXXXX)
P=(podman --root "$work/storage" --runroot "$work/run" --tmpdir "$work/tmp"
   --storage-driver overlay --cgroup-manager cgroupfs --events-backend none)
# podman save spools each layer through a temporary file: ours, not /var/tmp.
export TMPDIR=$work/tmp
cleanup() {
  "${P[@]}" rmi -a -f >/dev/null 2>&1 || true
  # The overlay driver may leave its own mounts under the storage root.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ctx" "$work/tmp"
if [ -n "$tarball" ]; then
  # Read only by podman; a copy where a hard link cannot be made.
  ln "$tarball" "$work/ctx/rootfs.tar" 2>/dev/null || cp "$tarball" "$work/ctx/rootfs.tar"
else
  tar -C "$root" --xattrs --xattrs-include='*' --numeric-owner -cf "$work/ctx/rootfs.tar" .
fi
cat > "$work/ctx/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
RUN ["/bin/sh", "-c", "rm /$GONE"]
ENV NODECHECK_ORACLE=podman PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.title="nodecheck reference" site.role=compute
USER 0:0
WORKDIR /root
EXPOSE 8080/tcp 9100/udp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["exec true"]
EOF
"${P[@]}" build --pull=never --network none -t "$TAG" \
  -f "$work/ctx/Containerfile" "$work/ctx" >&2
rm "$work/ctx/rootfs.tar"

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
"${P[@]}" save --format docker-archive -o "$out.tmp/oracle.docker.tar" "$TAG" >&2
"${P[@]}" save --format oci-dir -o "$out.tmp/oci" "$TAG" >&2
"${P[@]}" save --format oci-archive -o "$out.tmp/oracle.oci.tar" "$TAG" >&2
printf '/%s\n' "$GONE" > "$out.tmp/gone"
touch "$out.tmp/done"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
