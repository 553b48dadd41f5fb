#!/usr/bin/env bash
# The bench scale's checks (experiments/bench/README.md): learning curves to the plateau, and the
# labels=all vs one_per_video sanity sweep over 5 seeds. Usage, from the repository root:
#   bash experiments/bench/run.sh            (~75 min on 2 cores: 3 curve runs + 10 sweep runs)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/bench}
# 1. learning curves: validation every epoch of 230 steps (the bench validates once, at the end)
$PY src/train.py experiment=bench_sanity data.labels=all trainer.check_val_every_n_epoch=1 \
    hydra.run.dir=$OUT/curves/supervised_all_labels
$PY src/train.py experiment=bench_sanity data.labels=one_per_video trainer.check_val_every_n_epoch=1 \
    hydra.run.dir=$OUT/curves/supervised_one_label
$PY src/train.py experiment=synthetic_mean_teacher trainer.check_val_every_n_epoch=1 \
    hydra.run.dir=$OUT/curves/mean_teacher_one_label
$PY scripts/learning_curves.py $OUT/curves/supervised_all_labels $OUT/curves/supervised_one_label \
    $OUT/curves/mean_teacher_one_label out=experiments/bench/curves
# 2. does the bench resolve what it must? (seed spread, labels matter)
$PY src/train.py -m experiment=bench_sanity hydra.sweep.dir=$OUT/sanity
$PY scripts/aggregate.py $OUT/sanity out=experiments/bench
