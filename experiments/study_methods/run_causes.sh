#!/usr/bin/env bash
# Why FixMatch loses to Mean Teacher on the synthetic bench (experiments/study_methods/README.md):
# one cause at a time, each cell paired by seed with the committed runs of results.csv.
#   bash experiments/study_methods/run_causes.sh [seeds]     (default 1,2,3,4,5; ~10 min a run)
# then aggregate with the command of experiments/study_methods/causes/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SEEDS=${1:-1,2,3,4,5}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

cell() {  # cell NAME OVERRIDES...: the seeds no finished run holds, into outputs/study_methods_causes/NAME_seeds_<seeds>
  local name=$1 seeds; shift
  seeds=$($PY scripts/missing_seeds.py "$name" "$SEEDS" outputs/study_methods_causes experiments/study_methods/causes/results.csv)
  if [ -z "$seeds" ]; then echo "$name: seeds $SEEDS done"; return; fi
  $PY src/train.py -m experiment=study_methods "$@" "seed=$seeds" \
    "hydra.sweep.dir=outputs/study_methods_causes/${name}_seeds_${seeds//,/_}" callbacks.rich_progress_bar=null
}
cell fixmatch_cutmix0 method=fixmatch method.cutmix_p=0                   # cause 2: CutMix cuts the shapes
cell fixmatch_threshold09 method=fixmatch method.confidence_threshold=0.9  # cause 1: 0.95 leaves objects out
cell mean_teacher_cutmix05 method=mean_teacher method.cutmix_p=0.5         # the mirror: CutMix added to MT

# FixMatch and Mean Teacher as configured, seed 1 again, for their per-class pseudo-label logs (the
# committed runs predate them): one thread makes a run bit-reproducible, so each must score what
# results.csv holds for it. Kept apart (not *_seeds_*): a second run of a seed is not a new seed.
for method in fixmatch mean_teacher; do
  dir=outputs/study_methods_causes/relogged_${method}_seed1
  [ -f "$dir/0/metrics.json" ] || $PY src/train.py -m experiment=study_methods "method=$method" seed=1 \
    "hydra.sweep.dir=$dir" callbacks.rich_progress_bar=null
done
