"""Can mVC see temporal flicker on a data set's validation videos? (no training)

    python scripts/mvc_flicker.py [experiment=bench_sanity] [key=value ...] [seed=0]

Scores the ground truth as a prediction (mVC = 100) and the ground truth with each temporal pair
of the synthetic set (drift_left / drift_right, tagged_red / tagged_blue) swapped at random, with
probability 1/2 per frame: a prediction that finds every object but cannot keep a temporal class
from one frame to the next. Prints mVC_8 and mVC_16 of both and their differences.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf.errors import OmegaConfBaseException

from ssltm.data.synthetic import TEMPORAL_PAIRS
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics
from ssltm.runs.config import compose_config


def flickering(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The label map with each temporal pair swapped with probability 1/2 (one draw per frame)."""
    out = label.copy()
    for a, b in TEMPORAL_PAIRS:
        if rng.random() < 0.5:
            out[label == a], out[label == b] = b, a
    return out


def flicker_scores(videos, num_classes: int, seed: int = 0) -> tuple[dict, dict]:
    """(metrics of the exact ground truth, metrics of its flickering copy) over `videos`."""
    rng = np.random.default_rng(seed)
    exact, flicker = VideoSegmentationMetrics(num_classes), VideoSegmentationMetrics(num_classes)
    for video in videos:
        for t in range(video.num_frames):
            truth = video.label(t)
            target = torch.from_numpy(truth.astype(np.int64))[None]
            exact.update(target, target, [video.video_id], [t])
            flicker.update(torch.from_numpy(flickering(truth, rng).astype(np.int64))[None], target,
                           [video.video_id], [t])
    return exact.compute(), flicker.compute()


def main(argv: list[str]) -> int:
    seed = int(next((a.split("=", 1)[1] for a in argv if a.startswith("seed=")), 0))
    overrides = [a for a in argv if not a.startswith("seed=")] or ["experiment=bench_sanity"]
    try:
        cfg = compose_config("train", overrides, Path(__file__).resolve().parents[1] / "outputs")
        source = instantiate(cfg.data.source)
    except (HydraException, OmegaConfBaseException) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    exact, flicker = flicker_scores(source.videos(cfg.data.split), len(source.info.classes), seed)
    print(f"data: {' '.join(overrides)} ({cfg.data.split} videos)")
    for key in ("mVC8", "mVC16"):
        print(f"{key}: ground truth {100 * exact[key]:.2f}, flickering {100 * flicker[key]:.2f}, "
              f"difference {100 * (exact[key] - flicker[key]):.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
