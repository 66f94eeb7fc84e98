#!/usr/bin/env bash
# Set-up, then every test of the workspace (the WebAssembly spec suite included), then a
# check that the checked-in example builds match their C sources.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
bash scripts/build-examples.sh --check
