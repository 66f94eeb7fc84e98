#!/usr/bin/env bash
# Installs what kiln needs on a fresh Debian machine, then builds it.
#
# Idempotent: packages already present are not reinstalled, and `apt-get update` runs
# only when something is missing. Needs root (or sudo) only in that case.
set -euo pipefail

# clang, lld, wasi-libc and the wasm32 compiler runtime rebuild the example programs;
# libz3-dev is the solver the verifier links; binaryen gives wasm-opt for the reports.
PACKAGES=(clang lld wasi-libc libclang-rt-14-dev-wasm32 libz3-dev binaryen pkg-config)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found. Install the Rust toolchain (rustup, Rust 1.88 or newer) and rerun." >&2
    exit 1
fi

cd "$(dirname "$0")/.."
cargo build --release --locked -p kiln
