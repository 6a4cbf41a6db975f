#!/usr/bin/env bash
# Install what nodecheck needs to build and what its test suite uses, on
# Debian (run as root). Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  build-essential ca-certificates curl git pkg-config
  debootstrap      # builds the reference rootfs the end-to-end tests use
  libxml2-utils    # xmllint validates JUnit reports against the XSD
  pax-utils        # lddtree, a peer the ELF benchmark and tests compare with
  python3-pyelftools  # what lddtree (a Python script) needs to run
  libtree          # another peer of the ELF benchmark
  hyperfine        # benchmarks
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Rust: nodecheck needs 1.88 or newer, which Debian 12's cargo is not.
if ! command -v cargo >/dev/null; then
  if [[ ! -x "$HOME/.cargo/bin/cargo" ]]; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y --profile minimal --component clippy,rustfmt
  fi
  ln -sf "$HOME/.cargo/bin/cargo" /usr/local/bin/cargo
  ln -sf "$HOME/.cargo/bin/rustc" /usr/local/bin/rustc
fi
