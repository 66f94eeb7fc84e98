#!/usr/bin/env bash
# Set-up, a check that the checked-in example builds match their C sources, the
# WebAssembly spec suite's per-set counts, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-examples.sh --check
# The spec suite also runs within the workspace tests below; this run shows its counts
# (cargo hides a passing test's output).
cargo test --locked -p trace-capture --test spec -- --nocapture 2>&1 | grep -E '^(wasm-v[12]|SKIP|FAIL)'
cargo test --workspace --locked
