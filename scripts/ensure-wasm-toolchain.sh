#!/usr/bin/env bash
# Installs Debian's clang and lld (wasm-ld) when missing: scripts/build-native.sh compiles the
# project's WebAssembly kernels with them, and the test suite checks that the committed .wasm
# files are exactly what they make. Running oeld needs neither (the .wasm files are committed).
set -euo pipefail
if command -v clang >/dev/null && command -v wasm-ld >/dev/null; then exit 0; fi
echo "ensure-wasm-toolchain: installing clang and lld (Debian packages; needs root and apt)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q clang lld >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q clang lld >/dev/null; }
