#!/usr/bin/env bash
# Builds the test broker: librdkafka's mock cluster behind a few lines of C (test/kafka/mock-cluster.c).
# Installs Debian's librdkafka-dev and gcc when missing. Idempotent: rebuilds only when the source changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/mock-cluster
src=test/kafka/mock-cluster.c
missing=()
dpkg -s librdkafka-dev >/dev/null 2>&1 || missing+=(librdkafka-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
if ((${#missing[@]})); then
  echo "ensure-kafka-mock: installing ${missing[*]} (Debian packages; needs root and apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ ! -x $out || $src -nt $out ]]; then
  mkdir -p .build
  gcc -O2 -Wall -o "$out" "$src" -lrdkafka
  echo "ensure-kafka-mock: built $out"
fi
