#!/usr/bin/env bash
# Installs Debian's clang 16 and lld 16 (wasm-ld) when missing: scripts/build-native.sh compiles
# the project's WebAssembly kernels with them (16, not bookworm's default 14, because 14 emits a
# pre-standard opcode for relaxed SIMD's multiply-add), and the test suite checks that the
# committed .wasm files are exactly what they make. Running oeld needs neither (the .wasm files
# are committed).
set -euo pipefail
if command -v clang-16 >/dev/null && command -v wasm-ld-16 >/dev/null; then exit 0; fi
echo "ensure-wasm-toolchain: installing clang-16 and lld-16 (Debian packages; needs root and apt)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q clang-16 lld-16 >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q clang-16 lld-16 >/dev/null; }
