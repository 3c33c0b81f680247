#!/usr/bin/env bash
# Builds oeld's native CPU matmul (scripts/build-cpu-addon.mjs), installing Debian's g++ first when
# no C++ compiler is found; the test suite needs the addon (test/cpu-kernels.test.ts fails without
# it). Node's headers come with Node itself (include/node beside the binary, or /usr/include/node
# from Debian's or NodeSource's nodejs package).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v "${CXX:-g++}" >/dev/null; then
  echo "ensure-cpu-addon: installing g++ (Debian package; needs root and apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q g++ >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q g++ >/dev/null; }
fi
node scripts/build-cpu-addon.mjs
