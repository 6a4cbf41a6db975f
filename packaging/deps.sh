#!/usr/bin/env bash
# What building nodecheck needs on Debian (run as root): a C toolchain for
# the bundled SQLite, and Rust 1.88 or newer (rustup when cargo is missing:
# Debian 12's cargo is too old). Nothing the test suite uses: that is
# tests/deps.sh. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(build-essential ca-certificates curl git pkg-config)
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
