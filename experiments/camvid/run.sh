#!/usr/bin/env bash
# CamVid to its plateau (experiment=study_camvid): the per-frame network, SSLTM supervised-only and
# SSLTM + Mean Teacher, 3 seeds each, at 180x240, 2,000 steps, validated every 250 steps.
# Usage: bash experiments/camvid/run.sh [/path/to/camvid] [trainer=gpu ...]   (from the repository root)
# On a GPU (trainer=gpu) a run takes about 5 minutes with 9 side by side on one H200; on the 2-core
# CPU about 45 min (per-frame) to 3 h (Mean Teacher) each: see experiments/camvid/README.md.
set -euo pipefail
PY=${PY:-.venv/bin/python}
SRC=${1:-../shared/camvid}
shift || true
SMALL=outputs/camvid_180x240
OUT=outputs/study_camvid
[ -d "$SMALL/val" ] || $PY scripts/resize_camvid.py "$SRC" "$SMALL" --size 180 240
$PY src/train.py -m experiment=study_camvid data.root=$SMALL model=ssltm_per_frame method=supervised \
    hydra.sweep.dir=$OUT/ssltm_per_frame-supervised "$@"
$PY src/train.py -m experiment=study_camvid data.root=$SMALL model=ssltm method=supervised \
    hydra.sweep.dir=$OUT/ssltm-supervised "$@"
$PY src/train.py -m experiment=study_camvid data.root=$SMALL model=ssltm method=mean_teacher \
    hydra.sweep.dir=$OUT/ssltm-mean_teacher "$@"
$PY scripts/aggregate.py $OUT/ssltm_per_frame-supervised $OUT/ssltm-supervised $OUT/ssltm-mean_teacher out=$OUT
$PY scripts/learning_curves.py $OUT/*/[0-9]* out=$OUT/curves
