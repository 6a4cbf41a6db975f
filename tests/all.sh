#!/usr/bin/env bash
# Install what the tests need, build the cached reference Debian rootfs, and
# run the whole suite: formatting, lints, unit and end-to-end tests. As root.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/deps.sh
NODECHECK_TEST_ROOTFS=$(tests/rootfs/build.sh)
# A second, independent build from the same package list: the drift tests
# diff the two (tests/e2e/drift.rs).
NODECHECK_TEST_ROOTFS_REBUILD=$(NODECHECK_ROOTFS_VARIANT=rebuild tests/rootfs/build.sh)
export NODECHECK_TEST_ROOTFS_REBUILD
export NODECHECK_TEST_ROOTFS
echo "reference rootfs: $NODECHECK_TEST_ROOTFS"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Every fuzz target, built once, a few seconds each from its seeds.
tests/fuzz.sh

# The release build (glibc 2.17 floor), the .deb and the .rpm, installed and
# run as a site would.
tests/packages.sh
