#!/usr/bin/env bash
# The real-video bench's sweeps (experiments/camvid_bench/README.md), in two lanes of one thread:
#   bash experiments/camvid_bench/run.sh [camvid folder] [lane: a | b | all] [override ...]
# (overrides go to every run: `data.source.video_len=10` reruns the first design)
# Writes a 96x128 copy of CamVid once (outputs/camvid_96x128), then runs each cell's 5 seeds into
# outputs/camvid_bench/<cell>/; aggregate with the command at the end of the README.
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMVID=${1:-../shared/camvid}
LANE=${2:-all}
EXTRA=("${@:3}")
COPY=outputs/camvid_96x128
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
[ -f "$COPY/.complete" ] || { $PY scripts/resize_camvid.py "$CAMVID" "$COPY" --size 96 128 && touch "$COPY/.complete"; }

cell() {  # cell NAME OVERRIDES...: the 5 seeds of one setting
  local name=$1; shift
  if [ -f "outputs/camvid_bench/$name/multirun.yaml" ] && [ "$(ls outputs/camvid_bench/$name/*/metrics.json 2>/dev/null | wc -l)" -ge 5 ]; then
    echo "$name: done"; return
  fi
  $PY src/train.py -m experiment=camvid_bench data.root=$COPY "$@" ${EXTRA[@]+"${EXTRA[@]}"} \
    "hydra.sweep.dir=outputs/camvid_bench/$name" callbacks.rich_progress_bar=null
}

if [ "$LANE" = a ] || [ "$LANE" = all ]; then
  cell ssltm_supervised
  cell ssltm_mean_teacher method=mean_teacher
fi
if [ "$LANE" = b ] || [ "$LANE" = all ]; then
  cell ssltm_supervised_random backbone.pretrained=false
  cell ssltm_supervised_all_labels data.labels=all
  cell per_frame_supervised model=ssltm_per_frame
  cell per_frame_mean_teacher model=ssltm_per_frame method=mean_teacher
fi
