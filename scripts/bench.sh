#!/usr/bin/env bash
# Runs the benchmarks in sequence against the PostgreSQL server at OELD_BENCH_DATABASE_URL
# (default: OELD_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres). Each one
# creates its own oeld_bench_<random> database, drops it at the end, and ends with one
# machine-readable line: BENCH {json}.
#
#   npm run bench                          # append-throughput, replay-throughput, then the other bench/*.ts
#   npm run bench -- replay-throughput     # only the named ones (bench/<name>.ts)
#   BENCH_PROTOTYPES=1 npm run bench       # also bench/append-prototypes.ts (alternative append statements)
#
# Sizes come from the environment: BENCH_APPEND_N (200000), BENCH_APPEND_BATCH (1000),
# BENCH_REPLAY_N (1000000), ... (see the header of each file).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${OELD_BENCH_DATABASE_URL:-}" ]]; then bash scripts/ensure-postgres.sh; fi
bash scripts/ensure-kafka-mock.sh
node scripts/build-cpu-addon.mjs --optional

if (($# > 0)); then
  benches=("$@")
else
  benches=(append-throughput replay-throughput)
  for f in bench/*.ts; do
    b="$(basename "$f" .ts)"
    case "$b" in
      # The learning benchmarks are their own command (npm run bench:learning): they run for an hour; soak (npm run bench -- soak) for longer;
      # serving-clients is serving's load; lib, learning-world and lake-round are parts of the others.
      lib|learning|desk-learning|desk-extraction|learning-world|lake-round|soak|append-throughput|replay-throughput|append-prototypes|serving-clients) ;;
      *) benches+=("$b") ;;
    esac
  done
  if [[ "${BENCH_PROTOTYPES:-0}" == 1 ]]; then benches+=(append-prototypes); fi
fi

for b in "${benches[@]}"; do
  b="${b%.ts}"; b="${b#bench/}"
  if [[ ! -f "bench/$b.ts" ]]; then echo "no such benchmark: bench/$b.ts" >&2; exit 2; fi
  echo "== $b"
  node --import tsx "bench/$b.ts"
  echo
done
