#!/usr/bin/env bash
# SSLTM vs the per-frame baseline on the synthetic set's temporal classes, same data and budget
# (ResNet-18 from random weights, C=128, clips of 3 frames, 800 steps of 8 labelled clips).
# Usage: bash experiments/synthetic_temporal/run.sh   (from the repository root; ~25 min on 2 cores)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/synthetic_temporal
for exp in synthetic_per_frame synthetic_ssltm; do
  start=$(date +%s)
  $PY src/train.py experiment=$exp trainer.max_epochs=16 hydra.run.dir=$OUT/$exp
  echo "$exp $(( $(date +%s) - start ))" >> $OUT/wall_seconds.txt
done
git show 1bd03a0:scripts/runs_table.py > /tmp/runs_table.py && $PY /tmp/runs_table.py $OUT   # the table script of that time (removed since; scripts/aggregate.py reads sweeps)
