#!/usr/bin/env bash
# The two pictures of README.md / docs/visualize.md, from the CamVid runs of experiments/camvid/:
#   bash scripts/readme_pictures.sh [camvid root]     (after `bash experiments/camvid/run.sh`)
# 1. the first 40 val frames of CamVid as a folder of PNGs;
# 2. src/predict.py with SSLTM + Mean Teacher, compared with the per-frame baseline;
# 3. one overlay and the panel of most disagreement, shrunk to JPEGs in docs/images/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-../shared/camvid}
py=${PYTHON:-.venv/bin/python}
work=outputs/readme_pictures
ssltm=$(ls outputs/camvid/camvid_ssltm/checkpoints/epoch_*.ckpt | tail -1)
per_frame=$(ls outputs/camvid/camvid_per_frame/checkpoints/epoch_*.ckpt | tail -1)
$py scripts/export_video.py out=$work/frames data=camvid data.root="$root" split=val frames=40
$py src/predict.py ckpt_path="$ssltm" compare_ckpt_path="$per_frame" names=[SSLTM+MT,per-frame] \
    input=$work/frames output=$work/predict top_k=4
$py - "$work/predict" <<'PY'
import json, sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
summary = json.loads((out / "predict.json").read_text())
worst = summary["compare"]["panels"][0]
Image.open(out / "overlay" / f"{worst['name']}.png").save("docs/images/camvid_overlay.jpg", quality=85)
panel = Image.open(worst["panel"])
panel.resize((panel.width * 3 // 4, panel.height * 3 // 4), Image.LANCZOS).save("docs/images/camvid_compare.jpg", quality=85)
print(f"frame {worst['name']}: the models differ on {100 * worst['disagreement']:.1f}% of its pixels; "
      f"{100 * summary['compare']['mean_disagreement']:.1f}% over the {summary['frames']} frames")
PY
