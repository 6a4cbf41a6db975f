#!/usr/bin/env bash
# Build the release binary and packages (packaging/build.sh) and test them
# the way a site installs them. As root. Run by tests/all.sh.
#
# 1. The binary needs no glibc symbol newer than 2.17 (RHEL 7/8, SLES 15).
# 2. It runs on Debian 11's glibc (2.31), in a debootstrapped bullseye tree.
# 3. The .deb installs with dpkg -i into that fresh debootstrap tree and the
#    bundled base profile runs there.
# 4. The .rpm installs with rpm --root into a scratch root and rpm -V is clean.
set -euo pipefail
cd "$(dirname "$0")/.."

packaging/build.sh
bin=dist/nodecheck
deb=$(ls dist/nodecheck_*_amd64.deb)
rpm=$(ls dist/nodecheck-*.x86_64.rpm)
fail() { echo "packages: FAIL: $*" >&2; exit 1; }

# 1. The highest glibc symbol version the binary needs.
highest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "packages: highest glibc symbol version needed: $highest"
[[ $(printf '%s\n%s\n' "$highest" 2.17 | sort -V | tail -1) == 2.17 ]] ||
  fail "the release binary needs GLIBC_$highest (> 2.17)"
if objdump -p "$bin" | grep -q 'NEEDED.*libgcc_s'; then
  echo "packages: note: links libgcc_s.so.1 (present on every glibc system)"
fi

# 2 and 3, over an overlay so the cached tree stays as debootstrap left it.
bullseye=$(tests/rootfs/minbase.sh bullseye)
work=$(mktemp -d)
cleanup() {
  umount "$work/merged/proc" 2>/dev/null || true
  umount "$work/merged" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{upper,work,merged}
mount -t overlay overlay -o "lowerdir=$bullseye,upperdir=$work/upper,workdir=$work/work" "$work/merged"
root=$work/merged
glibc=$(chroot "$root" ldd --version | head -1)
echo "packages: bullseye tree: $glibc"

cp "$bin" "$root/tmp/nodecheck"
out=$(chroot "$root" /tmp/nodecheck --version) || fail "release binary does not start on bullseye"
echo "packages: release binary on bullseye: $out"

cp "$deb" "$root/tmp/nodecheck.deb"
chroot "$root" dpkg -i /tmp/nodecheck.deb >/dev/null || fail "dpkg -i"
for f in /usr/bin/nodecheck /usr/sbin/nodecheck-nhc /usr/share/nodecheck/profiles/base.toml \
  /usr/share/nodecheck/profiles/compute.toml /usr/share/man/man1/nodecheck-run.1.gz \
  /usr/share/bash-completion/completions/nodecheck /usr/share/doc/nodecheck/LICENSE; do
  [[ -e $root$f ]] || fail "the .deb did not install $f"
done
chroot "$root" dpkg --verify nodecheck || fail "dpkg --verify nodecheck"
mount -t proc proc "$root/proc"
set +e
chroot "$root" nodecheck run /usr/share/nodecheck/profiles/base.toml --target / --no-color \
  >"$work/base.out" 2>&1
rc=$?
set -e
umount "$root/proc"
tail -3 "$work/base.out"
[[ $rc -eq 0 ]] || { cat "$work/base.out"; fail "base.toml in the bullseye tree exited $rc"; }
grep -q 'Summary' "$work/base.out" || fail "no summary from base.toml"

# 4. The .rpm in a scratch root.
scratch=$work/rpmroot
mkdir -p "$scratch"
rpm --root "$scratch" --initdb
rpm --root "$scratch" --nodeps -i "$rpm" || fail "rpm -i"
[[ -x $scratch/usr/bin/nodecheck ]] || fail "the .rpm did not install /usr/bin/nodecheck"
verify=$(rpm --root "$scratch" -V --nodeps nodecheck) || fail "rpm -V nodecheck: $verify"
[[ -z $verify ]] || fail "rpm -V nodecheck is not clean: $verify"
echo "packages: rpm -V clean ($(rpm --root "$scratch" -ql nodecheck | wc -l) files)"
echo "packages: ok"
