#!/usr/bin/env bash
# Kiln's main job on the bundled example programs: for now, run each one on kiln's
# interpreter and show its hottest anchors (the places traces will be recorded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for wasm in examples/*.wasm; do
    echo "== $wasm"
    ./target/release/kiln run --stats --stats-limit 5 "$wasm"
done
