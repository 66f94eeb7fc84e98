#!/usr/bin/env bash
# Kiln's main job on the bundled example programs, as far as it is built: run each one
# on kiln's interpreter with trace recording on and collect the traces of its hot loops
# in a corpus (target/kiln-corpus); build each program's cache library from the corpus
# (saturation, then a z3 proof of every candidate; target/kiln-caches); run each program
# again with its cache and check it prints what the interpreter printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kiln=./target/release/kiln
corpus=target/kiln-corpus
caches=target/kiln-caches
mkdir -p "$caches"
for wasm in examples/*.wasm; do
    echo "== $wasm"
    "$kiln" record --corpus "$corpus" "$wasm"
done
echo "== corpus $corpus"
"$kiln" corpus --corpus "$corpus" stats
echo "== hottest traces (kiln corpus --corpus $corpus show ID prints one)"
"$kiln" corpus --corpus "$corpus" ls --limit 10
for wasm in examples/*.wasm; do
    name=$(basename "$wasm" .wasm)
    cache="$caches/$name.kcache"
    echo "== cache for $wasm"
    "$kiln" cache build --corpus "$corpus" --app "$wasm" -o "$cache"
    interpreted=$("$kiln" run "$wasm")
    cached=$("$kiln" run --cache "$cache" --stats-limit 0 "$wasm" 2> "$caches/$name.stats")
    if [ "$interpreted" != "$cached" ]; then
        echo "kiln: $wasm printed something else with its cache" >&2
        exit 1
    fi
    echo "same output with the cache; $(grep 'trace tier' "$caches/$name.stats")"
done
echo "== cache libraries in $caches (kiln cache inspect FILE lists one)"
