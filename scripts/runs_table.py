"""Markdown table of the runs of an experiment's run.sh: per-class IoU, mIoU, mVC and wall time.

    python scripts/runs_table.py <folder>

<folder>/wall_seconds.txt lists `<run> <seconds>` a line (written by run.sh); each run's
<folder>/<run>/metrics.json is read.
"""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
walls = dict(line.split()[:2] for line in (out / "wall_seconds.txt").read_text().splitlines() if line.strip())
runs = {name: json.loads((out / name / "metrics.json").read_text()) for name in walls}
classes = list(next(iter(runs.values()))["per_class_iou"])
print("| run | " + " | ".join(classes) + " | mIoU | mVC_8 | mVC_16 | wall (min) |")
print("|---" * (len(classes) + 5) + "|")
for name, m in runs.items():
    ious = " | ".join(f"{100 * m['per_class_iou'][c]:.1f}" for c in classes)
    print(f"| {name} | {ious} | {100 * m['mIoU']:.2f} | {100 * m['mVC8']:.2f} | {100 * m['mVC16']:.2f} "
          f"| {int(walls[name]) / 60:.1f} |")
