#!/usr/bin/env bash
# Services, packages and configs offline: nodecheck against the tools an
# admin would otherwise script, on the reference rootfs (and an RPM
# database made by Debian's rpm). Prints hyperfine's figures side by side.
#
#   benches/services.sh [ROOTFS]
#
# Peers: `systemctl --root` (the only offline reader of unit state),
# `dpkg-query --admindir`, `rpm --root -q`. InSpec, goss and testinfra
# only ask systemctl on a live system, so they cannot run here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-$(tests/rootfs/build.sh)}
command -v hyperfine >/dev/null || { echo "hyperfine missing: tests/deps.sh" >&2; exit 1; }

cargo build --release --quiet -p nodecheck-cli
bin=${CARGO_TARGET_DIR:-target}/release/nodecheck

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The same questions, asked both ways.
cat >"$work/units.toml" <<TOML
[profile]
name = "bench-units"
[[control]]
id = "units"
  [[control.service]]
  name    = ["ssh", "munge", "slurmd"]
  enabled = true
TOML
cat >"$work/dpkg.toml" <<TOML
[profile]
name = "bench-dpkg"
[[control]]
id = "packages"
  [[control.package]]
  name    = ["openssh-server", "munge", "slurmd"]
  version = { ge = "0" }
TOML

echo "== is-enabled of 3 units ($root)"
hyperfine -N --warmup 3 --export-markdown "$work/units.md" \
  -n "nodecheck service" "$bin run $work/units.toml --target $root --no-color" \
  -n "systemctl --root is-enabled" "systemctl --root=$root is-enabled ssh munge slurmd"
echo "== 3 packages from the dpkg database"
hyperfine -N --warmup 3 --export-markdown "$work/dpkg.md" \
  -n "nodecheck package" "$bin run $work/dpkg.toml --target $root --no-color" \
  -n "dpkg-query -W" "dpkg-query --admindir=$root/var/lib/dpkg -W openssh-server munge slurmd"

if command -v rpmbuild >/dev/null; then
  # An RPM database of 300 small packages.
  mkdir -p "$work/top/SPECS" "$work/rpmroot"
  for i in $(seq 1 300); do
    cat >"$work/top/SPECS/p$i.spec" <<SPEC
Name: bench-pkg-$i
Version: 1.$i
Release: 1.el9
Summary: bench
License: MIT
BuildArch: noarch
%description
bench
%files
SPEC
  done
  rpmbuild --define "_topdir $work/top" --quiet -bb "$work"/top/SPECS/*.spec
  rpm --root "$work/rpmroot" --dbpath /var/lib/rpm --initdb
  rpm --root "$work/rpmroot" --dbpath /var/lib/rpm -i --nodeps --noscripts --justdb \
    "$work"/top/RPMS/noarch/*.rpm 2>/dev/null
  cat >"$work/rpm.toml" <<TOML
[profile]
name = "bench-rpm"
[[control]]
id = "packages"
  [[control.package]]
  name    = ["bench-pkg-1", "bench-pkg-150", "bench-pkg-300"]
  version = { ge = "1" }
TOML
  echo "== 3 packages from an rpmdb.sqlite of 300 packages"
  hyperfine -N --warmup 3 --export-markdown "$work/rpm.md" \
    -n "nodecheck package" "$bin run $work/rpm.toml --target $work/rpmroot --no-color" \
    -n "rpm --root -q" "rpm --root $work/rpmroot --dbpath /var/lib/rpm -q bench-pkg-1 bench-pkg-150 bench-pkg-300"
fi

echo
cat "$work"/*.md
