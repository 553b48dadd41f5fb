"""Markdown table of run.sh: mIoU, mVC, wall time, training steps and disk bytes per method."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print("| run | val mIoU | mVC_8 | mVC_16 | wall (s) | training stages | disk written (MB) | of which pseudo-labels (MB) |")
print("|---|---|---|---|---|---|---|---|")
for name in ("supervised", "mean_teacher", "iterative", "full_supervision"):
    folder = out / name
    if not (folder / "metrics.json").is_file():
        print(f"| {name} | missing | | | | | | |")
        continue
    m = json.loads((folder / "metrics.json").read_text())
    s = json.loads((folder / "method_stats.json").read_text())
    if "stages" in s:
        disk = s["disk_bytes"]
        pseudo = s["pseudo_label_bytes"]
        stages = " + ".join(st["kind"] for st in s["stages"])
    else:
        disk, pseudo, stages = s["disk_bytes"]["total"], s["disk_bytes"]["pseudo_labels"], "train"
    print(f"| {name} | {100 * m['mIoU']:.2f} | {100 * m['mVC8']:.2f} | {100 * m['mVC16']:.2f} | "
          f"{s['wall_seconds']:.0f} | {stages} | {disk / 1e6:.1f} | {pseudo / 1e6:.2f} |")
