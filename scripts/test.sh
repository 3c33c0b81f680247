#!/usr/bin/env bash
# The whole suite: type check, then every test file against the PostgreSQL server and PGlite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
bash scripts/ensure-kafka-mock.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-prometheus.sh
bash scripts/ensure-wasm-toolchain.sh
bash scripts/ensure-cpu-addon.sh
bash scripts/ensure-torch.sh
bash scripts/ensure-transformers.sh
echo "== type check"
npx tsc -p tsconfig.json
echo "== tests"
node --import tsx --test --test-reporter=spec test/*.test.ts
