"""Score prediction PNGs against VSPW-layout ground truth, as VSPW's official scripts do.

    python scripts/score.py gt_root=<VSPW-layout folder> pred_dir=<folder> [split=val] [out=<file>]

Ground truth: <gt_root>/<split>.txt lists the videos; masks in <gt_root>/data/<video>/mask/*.png
(raw VSPW values). Predictions: <pred_dir>/<video>/<frame>.png with class ids 0..123 and the same
file names as the masks. Prints a table and writes metrics.json (default: <pred_dir>/metrics.json)
with mIoU, mVC8, mVC16, the window counts and per-class IoU. The metrics are the suite's own
(`ssltm.metrics`), on train ids for mIoU and mVC alike, exactly as training and src/eval.py
score (VSPW's VC_perclip.py compares raw masks; the two differ only where a pixel's raw ignore
value, 0, 254 or 255, changes inside a window).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from rich.progress import track

from ssltm.data.image_files import natural_order
from ssltm.data.vspw import VSPW_CLASSES, VSPW_NUM_CLASSES, read_split_file, remap_vspw_mask
from ssltm.errors import DataError
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics
from ssltm.runs.reporting import print_result, write_metrics


class ScoreError(ValueError):
    """Input folders that cannot be scored, with the offending path."""


def read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            array = np.array(image)
    except (OSError, ValueError) as err:
        raise ScoreError(f"cannot read {path}: {err}") from err
    if array.ndim != 2:
        raise ScoreError(f"{path}: expected a single-channel label PNG, got shape {array.shape}")
    return array


def score(gt_root: str | Path, pred_dir: str | Path, split: str = "val") -> dict:
    """mIoU / mVC8 / mVC16 / per-class IoU of the predictions of every video of `split`."""
    gt_root, pred_dir = Path(gt_root), Path(pred_dir)
    metrics = VideoSegmentationMetrics(VSPW_NUM_CLASSES)
    out_of_range: dict[str, list[int]] = {}
    for video in track(read_split_file(gt_root / f"{split}.txt"), description="scoring videos"):
        masks = natural_order((gt_root / "data" / video / "mask").glob("*.png"))
        if not masks:
            raise ScoreError(f"no masks in {gt_root / 'data' / video / 'mask'}")
        for index, mask_path in enumerate(masks):
            pred_path = pred_dir / video / mask_path.name
            if not pred_path.is_file():
                raise ScoreError(f"missing prediction {pred_path} (for {mask_path})")
            raw, pred = read_png(mask_path), read_png(pred_path)
            if raw.shape != pred.shape:
                raise ScoreError(f"{pred_path}: size {pred.shape} differs from {mask_path} {raw.shape}")
            outside = np.unique(pred[pred >= VSPW_NUM_CLASSES])
            if outside.size:  # scored as wrong everywhere; most likely a palette or offset mistake
                out_of_range.setdefault(str(pred_path), outside.tolist())
            metrics.update(
                torch.from_numpy(pred.astype(np.int64))[None],
                torch.from_numpy(remap_vspw_mask(raw, mask_path).astype(np.int64))[None],
                [video],
                [index],
            )
    if out_of_range:
        first, values = next(iter(out_of_range.items()))
        warnings.warn(
            f"{len(out_of_range)} prediction PNG(s) hold values outside the {VSPW_NUM_CLASSES} classes, scored as "
            f"wrong (e.g. {first}: {values[:5]}); predictions must be class ids 0..{VSPW_NUM_CLASSES - 1}",
            stacklevel=2,
        )
    return metrics.compute()


def main(argv: list[str]) -> int:
    args = OmegaConf.from_cli(argv)
    unknown = set(args) - {"gt_root", "pred_dir", "split", "out"}
    if unknown or "gt_root" not in args or "pred_dir" not in args:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        if unknown:
            print(f"unknown arguments: {sorted(unknown)}", file=sys.stderr)
        return 2
    try:
        result = score(args.gt_root, args.pred_dir, args.get("split", "val"))
    except (ScoreError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    names = list(VSPW_CLASSES)
    out = Path(args.get("out") or Path(args.pred_dir) / "metrics.json")
    print(f"predictions: {args.pred_dir}\nground truth: {args.gt_root} ({args.get('split', 'val')})")
    print_result(result, names, title="score")
    print(f"metrics: {write_metrics(out, result, names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
