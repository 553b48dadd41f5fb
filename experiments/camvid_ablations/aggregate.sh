#!/usr/bin/env bash
# The real-video ablations' tables, verdicts and plots, one folder a study (experiments/camvid_ablations/<study>/):
#   bash experiments/camvid_ablations/aggregate.sh [study ...]   (stt context gcc reference_distance methods;
#                                                                  default: every study with runs)
# A study reads the bench's own cells (experiments/camvid_bench/results.csv: supervised SSLTM from
# ImageNet, one label per video, and its Mean Teacher runs), its committed results.csv (the runs of
# earlier sessions, their folders deleted) and the folders of its cells in outputs/camvid_ablations/
# (experiments/camvid_ablations/run.sh); a run read twice counts once. Then the ledger.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
HERE=experiments/camvid_ablations
# shellcheck source=cells.sh
source experiments/camvid_ablations/cells.sh   # STUDY: the cells of each study
declare -A DEFAULTS=(  # the bench's value of each study's keys, for its own runs that do not set them
  [stt]="default.model.stt.enabled=true default.method=supervised where.method=supervised"
  [context]="default.model.context=rfce default.model.gcc.enabled=true default.method=supervised where.method=supervised"
  [gcc]="default.model.gcc.k=3 default.model.gcc.update=mse default.method=supervised where.method=supervised"
  [reference_distance]=""  # the bench draws d from [1, 9]: no cell of this study
  [methods]="default.method=supervised"
)
BENCH=(default.model=ssltm default.backbone.pretrained=true default.data.labels=one_per_video
       default.experiment=camvid_bench default.data.root=outputs/camvid_96x128 default.callbacks.rich_progress_bar=null
       where.model=ssltm where.backbone.pretrained=true where.data.labels=one_per_video)

for study in "${@:-stt context gcc reference_distance methods}"; do
  for name in $study; do
    [ -n "${STUDY[$name]:-}" ] || { echo "aggregate.sh: unknown study '$name' (${!STUDY[*]})" >&2; exit 2; }
    roots=()
    [ -z "${DEFAULTS[$name]}" ] || roots+=(experiments/camvid_bench/results.csv)
    [ -f "$HERE/$name/results.csv" ] && roots+=("$HERE/$name/results.csv")
    cells=0
    for cell in ${STUDY[$name]}; do
      found=0
      for dir in outputs/camvid_ablations/"${cell}"_seeds_*; do [ -d "$dir" ] && roots+=("$dir") && found=1; done
      cells=$((cells + found))
    done
    # a study without the bench's cell needs two of its own: one cell alone is no comparison, and its
    # results.csv would keep neither the swept key (one value) nor the run folders' names
    if [ "${#roots[@]}" -le 1 ] || { [ -z "${DEFAULTS[$name]}" ] && [ ! -f "$HERE/$name/results.csv" ] && [ "$cells" -lt 2 ]; }; then
      echo "$name: not enough runs yet"; continue
    fi
    # shellcheck disable=SC2086  # DEFAULTS holds words
    $PY scripts/aggregate.py "${roots[@]}" "study=camvid_study_$name" "${BENCH[@]}" ${DEFAULTS[$name]} out="$HERE/$name"
  done
done
$PY scripts/ledger.py
