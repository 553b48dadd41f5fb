"""Markdown table of the runs of run.sh: per-class IoU, mIoU and mVC from each run's metrics.json."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
names = [line.split()[0] for line in (out / "wall_seconds.txt").read_text().splitlines()]
runs = {name: json.loads((out / name / "metrics.json").read_text()) for name in names}
classes = list(next(iter(runs.values()))["per_class_iou"])
print("| run | " + " | ".join(classes) + " | mIoU | mVC_8 | mVC_16 |")
print("|---" * (len(classes) + 4) + "|")
for name, m in runs.items():
    ious = " | ".join(f"{100 * m['per_class_iou'][c]:.1f}" for c in classes)
    print(f"| {name} | {ious} | {100 * m['mIoU']:.2f} | {100 * m['mVC8']:.2f} | {100 * m['mVC16']:.2f} |")
