#!/usr/bin/env bash
# Rebuilds the bundled example programs: every examples/c/NAME.c becomes
# examples/NAME.wasm (wasm32-wasi, clang -O2, name section kept).
#
#   scripts/build-examples.sh           rebuild examples/*.wasm in place
#   scripts/build-examples.sh --check   rebuild into a temporary directory and
#                                       fail if any checked-in .wasm differs
#                                       (stale, missing or orphaned)
#
# Environment: CLANG (default: clang), WASI_SYSROOT (optional; passed as
# --sysroot, otherwise clang's built-in default is used, which on Debian is
# the wasi-libc package).
#
# Reproducibility: the same sources and toolchain give the same bytes. Each
# file is compiled from inside examples/c with a relative path, without debug
# info, and compiling and linking are separate steps: when clang links with an
# -O flag it silently post-processes the module with binaryen's wasm-opt if one
# is on PATH, which would make the output depend on whether binaryen is
# installed and would strip the name section. The link uses --strip-debug only
# to drop the DWARF that wasi-libc's archive carries; the name section stays.
# Different clang/wasi-libc versions do produce different bytes, so --check is
# only meaningful with the toolchain the checked-in files were built with
# (recorded in each module's "producers" section).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_dir="$root/examples/c"
out_dir="$root/examples"
CLANG="${CLANG:-clang}"
export LC_ALL=C # fixed glob order and tool messages

# Keep these in sync with scripts/bless-examples-expected.sh: -ffp-contract=off
# stops either compiler from fusing a*b+c into an fma, which would change
# floating-point results relative to the native build.
CFLAGS=(--target=wasm32-wasi -std=c11 -O2 -Wall -Werror -ffp-contract=off)
LDFLAGS=(--target=wasm32-wasi -Wl,--strip-debug)
if [[ -n "${WASI_SYSROOT:-}" ]]; then
    CFLAGS+=(--sysroot="$WASI_SYSROOT")
    LDFLAGS+=(--sysroot="$WASI_SYSROOT")
fi

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
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

missing_toolchain() {
    echo "error: $1" >&2
    echo "The examples need clang with the wasm32-wasi target, wasm-ld and the WASI sysroot." >&2
    echo "On Debian/Ubuntu install them with:" >&2
    echo "    sudo apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32" >&2
    echo "(use the libclang-rt-N-dev-wasm32 that matches your clang version N)," >&2
    echo "or point WASI_SYSROOT at a wasi-sdk sysroot." >&2
    exit 1
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Toolchain probe: compile and link a program that uses stdio, so a missing
# clang, wasm-ld, libc or compiler-rt builtins library is reported up front.
command -v "$CLANG" >/dev/null 2>&1 || missing_toolchain "'$CLANG' not found"
printf '#include <stdio.h>\nint main(void) { printf("%%d\\n", 1); return 0; }\n' >"$tmp/probe.c"
if ! "$CLANG" "${CFLAGS[@]}" -c "$tmp/probe.c" -o "$tmp/probe.o" 2>"$tmp/probe.log" ||
    ! "$CLANG" "${LDFLAGS[@]}" "$tmp/probe.o" -o "$tmp/probe.wasm" 2>>"$tmp/probe.log"; then
    sed 's/^/    /' "$tmp/probe.log" >&2
    missing_toolchain "$CLANG cannot build a wasm32-wasi program (missing WASI sysroot, wasm-ld or builtins?)"
fi
rm -f "$tmp/probe".*

shopt -s nullglob
sources=("$src_dir"/*.c)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "error: no sources in $src_dir" >&2
    exit 1
fi

build_dir="$tmp/build"
mkdir -p "$build_dir"
# Relative source paths, so nothing about the checkout location can leak in.
cd "$src_dir"
for path in "${sources[@]}"; do
    file="$(basename "$path")"
    name="${file%.c}"
    "$CLANG" "${CFLAGS[@]}" -c "$file" -o "$build_dir/$name.o"
    "$CLANG" "${LDFLAGS[@]}" "$build_dir/$name.o" -o "$build_dir/$name.wasm"
done

if [[ $check -eq 1 ]]; then
    status=0
    for path in "${sources[@]}"; do
        name="$(basename "$path" .c)"
        if [[ ! -f "$out_dir/$name.wasm" ]]; then
            echo "missing: examples/$name.wasm" >&2
            status=1
        elif ! cmp -s "$build_dir/$name.wasm" "$out_dir/$name.wasm"; then
            echo "stale:   examples/$name.wasm (differs from a fresh build of examples/c/$name.c)" >&2
            status=1
        fi
    done
    for wasm in "$out_dir"/*.wasm; do
        name="$(basename "$wasm" .wasm)"
        if [[ ! -f "$src_dir/$name.c" ]]; then
            echo "orphan:  examples/$name.wasm (no examples/c/$name.c)" >&2
            status=1
        fi
    done
    if [[ $status -ne 0 ]]; then
        echo "examples are out of date: run scripts/build-examples.sh (toolchain: $("$CLANG" --version | head -n1))" >&2
        exit 1
    fi
    echo "examples up to date (${#sources[@]} modules)"
    exit 0
fi

for path in "${sources[@]}"; do
    name="$(basename "$path" .c)"
    cp "$build_dir/$name.wasm" "$out_dir/$name.wasm.tmp"
    mv -f "$out_dir/$name.wasm.tmp" "$out_dir/$name.wasm"
    printf '%-24s %7d bytes\n' "examples/$name.wasm" "$(wc -c <"$out_dir/$name.wasm")"
done
for wasm in "$out_dir"/*.wasm; do
    name="$(basename "$wasm" .wasm)"
    if [[ ! -f "$src_dir/$name.c" ]]; then
        echo "warning: examples/$name.wasm has no source examples/c/$name.c (delete it?)" >&2
    fi
done
