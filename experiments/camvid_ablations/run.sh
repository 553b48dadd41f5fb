#!/usr/bin/env bash
# The paper's ablations on the real-video bench (experiments/camvid_ablations/README.md): every
# cell is experiment=camvid_bench (supervised SSLTM from ImageNet, one label in 30 frames) with one
# thing changed; the unchanged cells are experiments/camvid_bench/results.csv, paired by seed.
#   bash experiments/camvid_ablations/run.sh [camvid folder] [seeds] [cell or group ...]
#   e.g. bash experiments/camvid_ablations/run.sh ../shared/camvid 1,2,3 architecture gcc
# Groups: architecture, gcc, distance, methods (or name cells one by one; `list` prints them).
# A cell runs only its seeds that no finished run holds (in outputs/camvid_ablations/<cell>_seeds_*/
# or, once aggregated and deleted, in a committed results.csv), so a lane stopped mid-way resumes
# where it stopped; aggregate with experiments/camvid_ablations/aggregate.sh.
# Costs, one thread a run beside a second lane: supervised 4.5-7 min, semi-supervised 15-25 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMVID=${1:-../shared/camvid}
SEEDS=${2:-1,2,3}
shift $(( $# < 2 ? $# : 2 ))
COPY=outputs/camvid_96x128
OUT=outputs/camvid_ablations
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# shellcheck source=cells.sh
source experiments/camvid_ablations/cells.sh   # CELL (overrides by cell) and STUDY (cells by study)
declare -A GROUP=(
  [architecture]="${STUDY[stt]} ${STUDY[context]}"
  [gcc]="${STUDY[gcc]}"
  [distance]="${STUDY[reference_distance]}"
  [methods]="${STUDY[methods]}"
)

cell() {  # cell NAME: the cell's missing seeds, into outputs/camvid_ablations/<cell>_seeds_<seeds>
  local name=$1 seeds
  seeds=$($PY scripts/missing_seeds.py "$name" "$SEEDS" "$OUT" experiments/camvid_ablations/*/results.csv)
  if [ -z "$seeds" ]; then echo "$name: seeds $SEEDS done"; return; fi
  # shellcheck disable=SC2086  # the cell's overrides are words
  $PY src/train.py -m experiment=camvid_bench data.root=$COPY ${CELL[$name]} "seed=$seeds" \
    "hydra.sweep.dir=$OUT/${name}_seeds_${seeds//,/_}" callbacks.rich_progress_bar=null
}

if [ "${1:-}" = list ]; then
  for name in "${!CELL[@]}"; do echo "$name: ${CELL[$name]}"; done | sort; exit 0
fi
for arg in "${@:-architecture}"; do  # every name known before the first run
  for name in ${GROUP[$arg]:-$arg}; do
    [ -n "${CELL[$name]:-}" ] || { echo "run.sh: unknown cell or group '$name' (try: list)" >&2; exit 2; }
  done
done
[ -f "$COPY/.complete" ] || { $PY scripts/resize_camvid.py "$CAMVID" "$COPY" --size 96 128 && touch "$COPY/.complete"; }
for arg in "${@:-architecture}"; do
  for name in ${GROUP[$arg]:-$arg}; do cell "$name"; done
done
