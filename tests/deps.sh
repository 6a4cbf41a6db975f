#!/usr/bin/env bash
# Install what nodecheck needs to build and what its test suite uses, on
# Debian (run as root). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What building nodecheck needs (the README's first command uses only this).
packaging/deps.sh

packages=(
  debootstrap      # builds the reference rootfs the end-to-end tests use
  libxml2-utils    # xmllint validates JUnit reports against the XSD
  pax-utils        # lddtree, a peer the ELF benchmark and tests compare with
  python3-pyelftools  # what lddtree (a Python script) needs to run
  libtree          # another peer of the ELF benchmark
  hyperfine        # benchmarks
  aide             # benches/snapshot.sh: the peer of nodecheck snapshot
  libcap2-bin      # setcap/getcap: file capabilities in tests/e2e/drift.rs
  rpm              # rpmbuild and rpm --root: a real RPM database for the package kind
  systemd          # systemctl --root: the reference the service kind is compared with
  # Booted-node tests (tests/e2e/live.rs) start these themselves, on
  # loopback, and stop them: a real Slurm with munge for drain and resume,
  # a private sshd, a FUSE mount frozen to play a hung NFS server, and
  # Prometheus's parsers for the textfile report.
  slurmctld slurmd slurm-client munge
  # tests/e2e/fleet.rs: a four-node Slurm in namespaces (tests/fleet/cluster.sh)
  iproute2 util-linux  # ip (veth, bridge), unshare and nsenter
  openssh-server openssh-client
  bindfs           # (pulls in fuse and its fusermount)
  python3-prometheus-client prometheus-node-exporter
  kmod             # modinfo, the peer the kernel-module benchmark compares with
  xz-utils zstd    # the kernel-module tests compress real modules as RHEL and Ubuntu ship them
  time             # /usr/bin/time -v: peak memory of the decompression-bomb test
  podman runc      # a real container target for the exec tests (runc: crun
                   # refuses hybrid cgroup hierarchies)
  # Packaging tests (tests/packages.sh): the release build's zig comes from
  # PyPI, the packages are made by the distributions' own packers and
  # installed into a debootstrapped Debian 11 tree and an rpm scratch root.
  python3-pip binutils
  # taplo (npm's @taplo/cli) lints the bundled profiles with the JSON Schema.
  npm
  # Packed-image targets (tests/e2e/images.rs pack the reference rootfs
  # with the real tools): cpio, mksquashfs, lz4 (the legacy format the
  # kernel takes), bzip2.
  cpio squashfs-tools lz4 bzip2
  # Programs in a packed image as an unprivileged user: newuidmap and
  # newgidmap map a user namespace over the user's subordinate ids.
  uidmap
)
missing=()
# npm: any Node.js with npm does (a machine may have one outside Debian's).
command -v npm >/dev/null && packages=("${packages[@]/npm/}")
for p in "${packages[@]}"; do
  [[ -n $p ]] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  # The daemons are started by the tests, never as services.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The exec tests replace Lmod by environment-modules in a copy of the
# reference rootfs: keep the package at hand (it is not installed here).
debs=/var/cache/nodecheck/debs
if ! ls "$debs"/environment-modules_*.deb >/dev/null 2>&1; then
  mkdir -p "$debs"
  (cd "$debs" && apt-get download -q environment-modules)
fi

# taplo for the schema tests, cached by version.
taplo=/var/cache/nodecheck/tools/taplo-0.7.0
if [[ ! -x $taplo/node_modules/.bin/taplo ]]; then
  mkdir -p "$taplo"
  (cd "$taplo" && npm install --silent --no-audit --no-fund @taplo/cli@0.7.0)
fi

# The unprivileged users of tests/e2e/images.rs: nc-subids with a
# subordinate id range, nc-nosubids without.
tests/images/users.sh
