#!/usr/bin/env bash
# Builds the project's WebAssembly kernels from src/model/native/*.c with Debian's clang and
# wasm-ld (packages clang and lld; scripts/ensure-wasm-toolchain.sh installs them when missing). The .wasm files are committed, so
# that `npm ci && npm start` needs no compiler; test/wasm-batch-matmul.test.ts rebuilds them and
# checks that the committed files are exactly what this script makes from the committed source.
#
#   bash scripts/build-native.sh [OUT_DIR]    # default: src/model/native
#
# Two builds per kernel, because a module that imports a memory must declare whether it is shared:
# -shared for tfjs's multi-threaded build (its memory is a SharedArrayBuffer), -plain for the
# single-threaded one.
set -euo pipefail
cd "$(dirname "$0")/.."
src=src/model/native
out="${1:-$src}"
bash scripts/ensure-wasm-toolchain.sh
mkdir -p "$out"
common=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding
  -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 -Wl,--initial-memory=65536 -Wl,-z,stack-size=0)
for c in "$src"/*.c; do
  name="$(basename "$c" .c)"
  clang "${common[@]}" -matomics -mbulk-memory -Wl,--shared-memory -o "$out/$name-shared.wasm" "$c"
  clang "${common[@]}" -o "$out/$name-plain.wasm" "$c"
done
