#!/usr/bin/env bash
# Kiln's main job on the bundled example programs, the whole story: run each one on
# kiln's interpreter with trace recording on and collect the traces of its hot loops in a
# corpus (target/kiln-corpus); the nightly job, `kiln optimize`, saturates every trace
# and has z3 prove each candidate, storing the results in the corpus; build each
# program's cache library from those results (target/kiln-caches); run each program
# again with its cache and check it prints what the interpreter printed; write the
# missed-optimization report (target/kiln-report).
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
echo "== the nightly job: optimize and prove every trace without a current result"
"$kiln" optimize --corpus "$corpus"
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
report=target/kiln-report
echo "== missed-optimization report"
"$kiln" report --corpus "$corpus" -o "$report"
echo "kiln: the report is $report/report.html (also report.md and report.json)"
