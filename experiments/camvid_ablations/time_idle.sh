#!/usr/bin/env bash
# Mean Teacher vs iterative self-training on the CamVid bench: wall time measured on an idle
# machine. The methods study's runs (run.sh) share the CPU with a second lane and with whatever
# else runs, so their times say little about the methods; here each run has the machine to itself
# (every core, one run after the other), and the script refuses to start beside another training.
#   bash experiments/camvid_ablations/time_idle.sh [camvid folder] [seeds]     (default seed 1)
# Writes experiments/camvid_ablations/methods/idle_timing.csv: one row a run (method, seed, the
# machine's cores and torch threads, wall time of training + pseudo-labelling + evaluation, bytes
# written, mIoU). Cost on the 2-core CPU, guessed from the lane runs (one thread, beside a second
# lane: Mean Teacher 14.5 min, iterative 19-26): roughly 25-35 min a seed for the two.
set -euo pipefail
cd "$(dirname "$0")/../.."
CAMVID=${1:-../shared/camvid}
SEEDS=${2:-1}
COPY=outputs/camvid_96x128
OUT=outputs/camvid_ablations/idle_timing
PY=${PY:-.venv/bin/python}

if pgrep -f "src/train.py" > /dev/null; then
  echo "time_idle.sh: another training runs ($(pgrep -f src/train.py | wc -l) processes of src/train.py): its times would be inflated; wait for it or stop it" >&2
  exit 2
fi
[ -f "$COPY/.complete" ] || { $PY scripts/resize_camvid.py "$CAMVID" "$COPY" --size 96 128 && touch "$COPY/.complete"; }
for seed in ${SEEDS//,/ }; do
  for method in mean_teacher iterative; do
    dir=$OUT/${method}_seed_$seed
    [ -f "$dir/metrics.json" ] || $PY src/train.py experiment=camvid_bench data.root=$COPY "method=$method" "seed=$seed" \
      "hydra.run.dir=$dir" callbacks.rich_progress_bar=null
  done
done
$PY - "$OUT" experiments/camvid_ablations/methods/idle_timing.csv <<'EOF'
import csv, json, os, platform, sys
from pathlib import Path

import torch

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = []
for run in sorted(runs.glob("*_seed_*")):
    if not (run / "metrics.json").is_file():
        continue
    method, seed = run.name.rsplit("_seed_", 1)
    stats = json.loads((run / "method_stats.json").read_text())
    disk = stats["disk_bytes"]
    rows.append({"method": method, "seed": seed, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                 "cpu": platform.processor() or platform.machine(), "wall_seconds": round(stats["wall_seconds"], 1),
                 "disk_bytes": disk["total"] if isinstance(disk, dict) else disk,
                 "mIoU": json.loads((run / "metrics.json").read_text())["mIoU"], "folder": run.name})
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["method"])
    writer.writeheader()
    writer.writerows(rows)
for r in rows:
    print(f"{r['method']:>13} seed {r['seed']}: {r['wall_seconds'] / 60:.1f} min, {r['disk_bytes'] / 1e6:.1f} MB, mIoU {100 * r['mIoU']:.2f}")
print(f"-> {out}")
EOF
