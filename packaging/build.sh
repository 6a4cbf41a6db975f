#!/usr/bin/env bash
# Build nodecheck's release packages: a static-glibc-floor binary (it runs
# on glibc >= 2.17: RHEL/Rocky 7-8, SLES 15, Ubuntu 18.04+), a .deb and an
# .rpm with the bundled profiles, man pages, shell completions, docs and the
# HealthCheckProgram wrapper.
#
#   packaging/build.sh            # -> dist/nodecheck, dist/*.deb, dist/*.rpm
#
# The binary is linked by zig against glibc 2.17's symbol versions
# (cargo-zigbuild; zig comes as PyPI's `ziglang`); both are installed once
# into /var/cache/nodecheck/tools, keyed by version. The packages are made
# by the distributions' own packers, dpkg-deb and rpmbuild.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
GLIBC=2.17
tools=${NODECHECK_TOOLS:-/var/cache/nodecheck/tools}
zigdir=$tools/ziglang-$ZIG_VERSION
czbdir=$tools/cargo-zigbuild-$ZIGBUILD_VERSION

if [[ ! -x $zigdir/ziglang/zig ]]; then
  python3 -m pip install -q --break-system-packages --target "$zigdir" "ziglang==$ZIG_VERSION" >&2
fi
if [[ ! -x $czbdir/bin/cargo-zigbuild ]]; then
  cargo install -q --locked --root "$czbdir" cargo-zigbuild --version "$ZIGBUILD_VERSION" >&2
fi
export PATH="$czbdir/bin:$PATH"
# cargo-zigbuild finds zig through `python3 -m ziglang` when it is not on PATH.
export PYTHONPATH="$zigdir${PYTHONPATH:+:$PYTHONPATH}"
export CARGO_ZIGBUILD_ZIG_PATH="$zigdir/ziglang/zig"

triple=x86_64-unknown-linux-gnu
cargo zigbuild --release --locked -p nodecheck-cli --target "$triple.$GLIBC" >&2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
dist=dist
rm -rf "$dist"
mkdir -p "$dist"
cp "target/$triple/release/nodecheck" "$dist/nodecheck"
strip --strip-all "$dist/nodecheck"

# The tree both packages install.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -D -m 0755 "$dist/nodecheck" "$root/usr/bin/nodecheck"
install -D -m 0755 packaging/nodecheck-nhc "$root/usr/sbin/nodecheck-nhc"
mkdir -p "$root/usr/share/nodecheck"
cp -r profiles "$root/usr/share/nodecheck/profiles"
install -D -m 0644 docs/profile.schema.json "$root/usr/share/nodecheck/profile.schema.json"
mkdir -p "$root/usr/share/man/man1"
"$dist/nodecheck" manpages "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
"$dist/nodecheck" completions bash |
  install -D -m 0644 /dev/stdin "$root/usr/share/bash-completion/completions/nodecheck"
"$dist/nodecheck" completions zsh |
  install -D -m 0644 /dev/stdin "$root/usr/share/zsh/vendor-completions/_nodecheck"
"$dist/nodecheck" completions fish |
  install -D -m 0644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/nodecheck.fish"
mkdir -p "$root/usr/share/doc/nodecheck"
cp README.md LICENSE "$root/usr/share/doc/nodecheck/"
cp -r docs/. "$root/usr/share/doc/nodecheck/"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -perm -u+x -exec chmod 0644 {} +

# .deb
mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: nodecheck
Version: $version
Architecture: amd64
Maintainer: nodecheck developers <nodecheck@example.invalid>
Depends: libc6 (>= $GLIBC)
Installed-Size: $size
Section: admin
Priority: optional
Description: test HPC node images, containers and booted nodes
 nodecheck checks compute-node images (unpacked trees, containers, the
 booted node) against declarative TOML profiles: files, accounts, kernel
 modules, ELF linkage, compilers, MPI, services and packages. It is also a
 Slurm HealthCheckProgram (nodecheck nhc) that drains and resumes nodes.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$root" "$dist/nodecheck_${version}_amd64.deb" >&2
rm -rf "$root/DEBIAN"

# .rpm: rpmbuild packs the staged tree as it is.
top=$stage/rpmbuild
mkdir -p "$top"/{SPECS,RPMS,BUILD,BUILDROOT}
files=$(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | sort)
{
  cat <<SPEC
Name: nodecheck
Version: $version
Release: 1
Summary: Test HPC node images, containers and booted nodes
License: Apache-2.0
BuildArch: x86_64
Requires: glibc >= $GLIBC
AutoReqProv: no
%global __os_install_post %{nil}
%global debug_package %{nil}
%global _build_id_links none

%description
nodecheck checks compute-node images (unpacked trees, containers, the
booted node) against declarative TOML profiles, and is a Slurm
HealthCheckProgram (nodecheck nhc) that drains and resumes nodes.

%install
mkdir -p %{buildroot}
cp -a $root/. %{buildroot}/

%files
%defattr(-,root,root,-)
SPEC
  (cd "$root" && find ./usr/share/nodecheck ./usr/share/doc/nodecheck -type d) | sed 's|^\.|%dir |'
  printf '%s\n' "$files" | sed 's|^/usr/share/doc/|%doc /usr/share/doc/|'
} >"$top/SPECS/nodecheck.spec"
rpmbuild --quiet --define "_topdir $top" --define "_buildhost nodecheck" -bb "$top/SPECS/nodecheck.spec" >&2
cp "$top"/RPMS/x86_64/nodecheck-"$version"-1.x86_64.rpm "$dist/"
ls -1 "$dist"
