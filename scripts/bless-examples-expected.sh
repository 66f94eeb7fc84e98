#!/usr/bin/env bash
# Regenerates the expected outputs of the bundled examples from a native
# build: every examples/c/NAME.c is compiled with the host C compiler into a
# temporary directory and run twice; stdout is written to
#   examples/expected/NAME.1.out        (argument "1": the small, fast run)
#   examples/expected/NAME.default.out  (no argument: the default scale)
#
#   scripts/bless-examples-expected.sh          write the expected files
#   scripts/bless-examples-expected.sh --check  only compare, fail on any difference
#
# Environment: CC (default: gcc).
#
# The examples are written so that this native build and the wasm32 build
# (scripts/build-examples.sh) print identical bytes: fixed-width integer types,
# IEEE double arithmetic with the same operation order, and -ffp-contract=off
# in both builds so neither compiler fuses multiply-adds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_dir="$root/examples/c"
exp_dir="$root/examples/expected"
CC="${CC:-gcc}"
export LC_ALL=C

CFLAGS=(-std=c11 -O2 -Wall -Werror -ffp-contract=off)
case "$(uname -m)" in
    i?86) CFLAGS+=(-msse2 -mfpmath=sse) ;; # no x87 extended precision
esac

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac
if [[ $# -gt 1 ]]; then
    usage >&2
    exit 2
fi

command -v "$CC" >/dev/null 2>&1 || {
    echo "error: C compiler '$CC' not found (set CC or install gcc)" >&2
    exit 1
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
sources=("$src_dir"/*.c)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "error: no sources in $src_dir" >&2
    exit 1
fi

mkdir -p "$tmp/out"
for path in "${sources[@]}"; do
    name="$(basename "$path" .c)"
    "$CC" "${CFLAGS[@]}" "$path" -o "$tmp/$name" -lm
    for run in 1 default; do
        args=()
        [[ $run == 1 ]] && args=(1)
        status=0
        "$tmp/$name" "${args[@]}" >"$tmp/out/$name.$run.out" || status=$?
        if [[ $status -ne 0 ]]; then
            echo "error: native $name (${run} scale) exited with status $status; output:" >&2
            sed 's/^/    /' "$tmp/out/$name.$run.out" >&2
            exit 1
        fi
    done
done

if [[ $check -eq 1 ]]; then
    status=0
    for f in "$tmp/out"/*.out; do
        base="$(basename "$f")"
        if [[ ! -f "$exp_dir/$base" ]]; then
            echo "missing: examples/expected/$base" >&2
            status=1
        elif ! cmp -s "$f" "$exp_dir/$base"; then
            echo "differs: examples/expected/$base" >&2
            diff -u "$exp_dir/$base" "$f" >&2 || true
            status=1
        fi
    done
    for f in "$exp_dir"/*.out; do
        base="$(basename "$f")"
        if [[ ! -f "$tmp/out/$base" ]]; then
            echo "orphan:  examples/expected/$base" >&2
            status=1
        fi
    done
    if [[ $status -ne 0 ]]; then
        echo "expected outputs are out of date: run scripts/bless-examples-expected.sh" >&2
        exit 1
    fi
    echo "expected outputs up to date (${#sources[@]} programs)"
    exit 0
fi

mkdir -p "$exp_dir"
for f in "$tmp/out"/*.out; do
    cp "$f" "$exp_dir/$(basename "$f")"
done
for f in "$exp_dir"/*.out; do
    if [[ ! -f "$tmp/out/$(basename "$f")" ]]; then
        echo "warning: examples/expected/$(basename "$f") has no matching program (delete it?)" >&2
    fi
done
echo "wrote $((${#sources[@]} * 2)) files to examples/expected/"
