#!/usr/bin/env bash
# Mean Teacher vs iterative self-training vs supervised-only (and the fully supervised upper
# bound) on the synthetic videos, one labelled frame per video, SSLTM at CPU size
# (experiment=synthetic_ssltm: ResNet-18, C=128, 3-frame clips), 200 steps per training stage.
# Usage: bash experiments/mean_teacher_vs_iterative/run.sh   (from the repository root)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/mean_teacher_vs_iterative
COMMON="experiment=synthetic_ssltm trainer.max_epochs=4"
run() {  # name, overrides...
  local name=$1; shift
  $PY src/train.py $COMMON "$@" hydra.run.dir=$OUT/$name
}
run supervised method=supervised
run mean_teacher method=mean_teacher
run iterative method=iterative
run full_supervision method=supervised data.labels=all
$PY experiments/mean_teacher_vs_iterative/table.py $OUT
