#!/usr/bin/env bash
# Builds the project's WebAssembly kernels from src/model/kernels/native/*.c with Debian's clang 16 and
# wasm-ld 16 (scripts/ensure-wasm-toolchain.sh installs them when missing). The .wasm files are
# committed, so `npm ci && npm start` needs no compiler; test/wasm-kernels.test.ts rebuilds
# them and checks that the committed files are exactly what this script makes from the source.
#
#   bash scripts/build-native.sh [OUT_DIR]    # default: src/model/kernels/native
#
# Two or four builds per source: a module that imports a memory must declare whether it is shared
# (-shared for tfjs's multi-threaded build, whose memory is a SharedArrayBuffer; -plain for the
# single-threaded one); a source that uses relaxed SIMD (it tests RELAXED) is also built with it
# (-relaxed: used where the runtime accepts it) besides plain SIMD128 (-simd).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-wasm-toolchain.sh
src=src/model/kernels/native
out="${1:-$src}"
mkdir -p "$out"
common=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fuse-ld="$(command -v wasm-ld-16)"
  -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 -Wl,--initial-memory=65536 -Wl,-z,stack-size=0)
for c in "$src"/*.c; do
  name="$(basename "$c" .c)"
  flavours=(simd)
  if grep -q RELAXED "$c"; then flavours+=(relaxed); fi
  for simd in "${flavours[@]}"; do
    flags=()
    if [[ $simd == relaxed ]]; then flags=(-mrelaxed-simd -DRELAXED); fi
    clang-16 "${common[@]}" "${flags[@]}" -matomics -mbulk-memory -Wl,--shared-memory -o "$out/$name-shared-$simd.wasm" "$c"
    clang-16 "${common[@]}" "${flags[@]}" -o "$out/$name-plain-$simd.wasm" "$c"
  done
done
