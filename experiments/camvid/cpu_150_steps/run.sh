#!/usr/bin/env bash
# SSLTM + Mean Teacher vs the per-frame baseline on CamVid, one labelled frame per 10-frame video,
# 150 steps each from random weights (experiment=camvid_ssltm, experiment=camvid_per_frame), and
# SSLTM trained on the labelled frames alone (experiment=camvid_ssltm_supervised).
# Usage: bash experiments/camvid/run.sh [/path/to/camvid]   (from the repository root; ~35 min)
set -euo pipefail
PY=${PY:-.venv/bin/python}
ROOT=${1:-../shared/camvid}
OUT=outputs/camvid
mkdir -p $OUT
run() {  # name, overrides...
  local name=$1; shift
  local start=$(date +%s)
  $PY src/train.py "$@" data.root=$ROOT hydra.run.dir=$OUT/$name
  echo "$name $(( $(date +%s) - start ))" >> $OUT/wall_seconds.txt
}
run camvid_per_frame experiment=camvid_per_frame
run camvid_ssltm experiment=camvid_ssltm
run camvid_ssltm_supervised experiment=camvid_ssltm_supervised
git show 1bd03a0:scripts/runs_table.py > /tmp/runs_table.py && $PY /tmp/runs_table.py $OUT   # the table script of that time (removed since; scripts/aggregate.py reads sweeps)
