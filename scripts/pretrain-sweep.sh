#!/usr/bin/env bash
# Trains several configurations of the base model side by side on one GPU with
# scripts/pretrain-gpu.py (a model this small leaves most of an H100 idle, so three runs in
# parallel cost little more than one), then prints each one's last held-out check and speed.
#
#   scripts/pretrain-sweep.sh CORPUS OUT MINUTES NAME=ARGS [NAME=ARGS ...]
#
# PYTHON picks the interpreter (default python3). E.g.
#      scripts/pretrain-sweep.sh .scratch/corpus "$OUT" 4 l6h4= \
#        l6h8="--set num_attention_heads=8 --set num_key_value_heads=8" l8h4="--set num_hidden_layers=8"
set -euo pipefail
if [ $# -lt 4 ]; then sed -n 2,10p "$0" >&2; exit 2; fi
corpus=$1 out=$2 minutes=$3
shift 3
mkdir -p "$out"
pids=()
for spec in "$@"; do
  name=${spec%%=*}
  args=${spec#*=}
  # shellcheck disable=SC2086  # ARGS is a list of options
  "${PYTHON:-python3}" "$(dirname "$0")/pretrain-gpu.py" --corpus "$corpus" --out "$out/$name" --minutes "$minutes" \
    --save-every 45 --eval-every 30 $args > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for spec in "$@"; do
  name=${spec%%=*}
  echo "== $name"
  grep '"stage": "heldOut"' "$out/$name.log" | tail -1 || true
  grep '"stage": "pretrained"' "$out/$name.log" || tail -5 "$out/$name.log"
done
exit $status
