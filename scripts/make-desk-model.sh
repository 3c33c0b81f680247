#!/usr/bin/env bash
# Makes a base model that serves both built-in tasks (the lake worlds and the support desk) on
# CPU, in three stages over the vocabulary grown for English (models/README.md, "The model for
# both tasks"):
#   0. a copying drill alone (copy-repeat), from fresh weights: the attention that finds where the
#      text it is writing stood before and copies what came next forms here, in a few minutes;
#   1. the support desk's kinds with the copying drills: reading a value from the items in context;
#   2. everything, the lake worlds from the start.
# A model continued from the lake-only model (models/oeld-base) never formed that copying in
# 600 steps of the drill alone (its loss stayed at 2.2 where fresh weights reached 0.2), and a
# fresh model given every kind at once did not form it in 1,400 steps: hence the drill first.
#
#   scripts/make-desk-model.sh OUT [STAGE2_STEPS]
#
# About 55 minutes on 2 cores (stage 0: 5, stage 1: 9, stage 2: 45). models/oeld-desk was made by
# these commands; its stages 1 and 2 were cut by --minutes, at the steps --stop-after repeats
# (STAGE2_STEPS defaults to 5937; 0 runs stage 2's whole schedule of 6000 steps).
set -euo pipefail
out=${1:?usage: scripts/make-desk-model.sh OUT [STAGE2_STEPS]}
stage2_stop=${2:-5937}
tsx() { node --import tsx "$@"; }
mkdir -p "$(dirname "$out")"
tsx scripts/extend-vocabulary.ts --from models/oeld-base --out "$out.vocabulary"
tsx scripts/make-base-model.ts --tokenizer-from "$out.vocabulary" --out "$out.stage0" --steps 800 \
  --learning-rate 0.001 --warmup 50 --batch-size 64 --tokens-per-batch 4096 \
  --mix familiar=0,guess=0,informed=0,extract=0,copy-repeat=1
tsx scripts/make-base-model.ts --from "$out.stage0" --out "$out.stage1" --steps 1500 --stop-after 1365 \
  --learning-rate 0.001 --warmup 30 --batch-size 64 --tokens-per-batch 4096 \
  --mix familiar=0,guess=0,informed=0,extract=0,desk-guess=0.05,desk-informed=0.25,desk-extract=0.1,desk-recall=0.1,desk-copy=0.35,copy-repeat=0.15
tsx scripts/make-base-model.ts --from "$out.stage1" --out "$out" --steps 6000 --stop-after "$stage2_stop" \
  --learning-rate 0.0008 --warmup 200 --batch-size 32 --tokens-per-batch 6144 \
  --mix familiar=0.05,guess=0.1,informed=0.3,extract=0.13,desk-guess=0.04,desk-informed=0.1,desk-extract=0.1,desk-recall=0.04,desk-copy=0.08,copy-repeat=0.06
rm -rf "$out.vocabulary" "$out.stage0" "$out.stage1"
