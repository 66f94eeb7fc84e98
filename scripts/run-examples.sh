#!/usr/bin/env bash
# Kiln's main job on the bundled example programs, as far as it is built: run each one
# on kiln's interpreter with trace recording on, collect the traces of its hot loops in a
# corpus (target/kiln-corpus), and show what the corpus holds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kiln=./target/release/kiln
corpus=target/kiln-corpus
for wasm in examples/*.wasm; do
    echo "== $wasm"
    "$kiln" record --corpus "$corpus" "$wasm"
done
echo "== corpus $corpus"
"$kiln" corpus --corpus "$corpus" stats
echo "== hottest traces (kiln corpus --corpus $corpus show ID prints one)"
"$kiln" corpus --corpus "$corpus" ls --limit 10
