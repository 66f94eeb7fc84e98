#!/usr/bin/env bash
# A/B of two kiln builds (or of one build with two sets of cache libraries) on the bundled
# examples: the two sides take turns, run after run, so that the machine's drift touches
# both alike, and each keeps its own warm code cache. Prints each program's median wall
# time per side and the ratio B ÷ A (below 1: B is faster), then their geometric mean.
#
#   scripts/ab.sh [--runs N] [--cache-a DIR] [--cache-b DIR] KILN_A KILN_B [PROGRAM...]
#
# With --cache-a/--cache-b each side runs `kiln run --cache DIR/P.kcache examples/P.wasm`;
# without, the interpreter alone (`kiln run examples/P.wasm`). PROGRAM defaults to every
# example. Absolute times on a shared machine are noise; quote the ratios.
#
# One build with two sets of libraries measures what the libraries hold, nothing else:
# a run also records side traces and live traces with the build's own recorder, so a
# change to recording needs two builds (or a switch inside one) to be measured whole.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=7
cache_a=""
cache_b=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --cache-a) cache_a=$2; shift 2 ;;
        --cache-b) cache_b=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
kiln_a=$1
kiln_b=$2
shift 2
programs=("$@")
if [ ${#programs[@]} -eq 0 ]; then
    for wasm in examples/*.wasm; do programs+=("$(basename "$wasm" .wasm)"); done
fi
code_caches=$(mktemp -d)
trap 'rm -rf "$code_caches"' EXIT

# run SIDE PROGRAM: one timed run, in microseconds.
run() {
    local kiln=$kiln_a cache=$cache_a
    if [ "$1" = b ]; then kiln=$kiln_b cache=$cache_b; fi
    local args=("examples/$2.wasm")
    if [ -n "$cache" ]; then args=(--cache "$cache/$2.kcache" "${args[@]}"); fi
    local start end
    start=$(date +%s%N)
    KILN_CODE_CACHE="$code_caches/$1" "$kiln" run "${args[@]}" > /dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

ratios=()
for p in "${programs[@]}"; do
    run a "$p" > /dev/null # fills each side's code cache
    run b "$p" > /dev/null
    times_a=()
    times_b=()
    for _ in $(seq "$runs"); do
        times_a+=("$(run a "$p")")
        times_b+=("$(run b "$p")")
    done
    a=$(median "${times_a[@]}")
    b=$(median "${times_b[@]}")
    ratios+=("$b/$a")
    awk -v p="$p" -v a="$a" -v b="$b" \
        'BEGIN { printf "%-12s A %8.1f ms   B %8.1f ms   B/A %.3f\n", p, a / 1000, b / 1000, b / a }'
done
printf '%s\n' "${ratios[@]}" | awk -F/ -v n="$runs" \
    '{ s += log($1 / $2) } END { printf "geometric mean of B/A over %d programs: %.3f (%d runs each, medians)\n", NR, exp(s / NR), n }'
