"""Clip sampling shared by every data set: which frames make a sample, and which frames are labelled.

A sample around query frame q is T adjacent frames with step s ending at q,
    [q - (T-1)s, ..., q - s, q],
and one reference frame at temporal distance d before the query, q - d. Indices are clamped into
the video, so a query near the start repeats its first frame. In training d is drawn uniformly
from [min_distance, max_distance]; in evaluation it is fixed (`eval_distance`).
"""

from __future__ import annotations

import numpy as np
import torch

from ssltm.errors import ConfigError
from ssltm.utils.options import distance_problem, require


class ClipSampler:
    """Frame indices of a clip and its reference.

    Args:
        num_frames: T, the adjacent frames of a clip (query included, last).
        step: s, the distance between two adjacent frames of a clip.
        min_distance, max_distance: range of the reference distance d in training.
        eval_distance: d in evaluation.
    """

    def __init__(
        self,
        num_frames: int = 4,
        step: int = 1,
        min_distance: int = 1,
        max_distance: int = 30,
        eval_distance: int = 30,
    ) -> None:
        for option, value in (("num_frames", num_frames), ("step", step), ("min_distance", min_distance),
                              ("max_distance", max_distance), ("eval_distance", eval_distance)):
            require(f"data.clip.{option}", value)
        if distance_problem(min_distance, max_distance):
            raise ConfigError(distance_problem(min_distance, max_distance))
        self.num_frames = num_frames
        self.step = step
        self.min_distance = min_distance
        self.max_distance = max_distance
        self.eval_distance = eval_distance

    def clip_indices(self, query: int, video_len: int) -> list[int]:
        first = query - (self.num_frames - 1) * self.step
        return [min(max(i, 0), video_len - 1) for i in range(first, query + 1, self.step)]

    def reference_index(self, query: int, video_len: int, train: bool) -> int:
        if train:
            d = int(torch.randint(self.min_distance, self.max_distance + 1, ()).item())
        else:
            d = self.eval_distance
        return min(max(query - d, 0), video_len - 1)


def select_labelled(
    annotated: list[int], mode: str, every_k: int = 10, seed: int = 0, video_index: int = 0
) -> list[int]:
    """Which of a training video's annotated frames are exposed as labelled.

    Args:
        annotated: frame indices that have ground truth, in order.
        mode: `one_per_video` (one frame drawn uniformly, deterministic by seed: the paper's VSPW
            setting), `all` (full supervision, the upper bound), or `every_k` (every k-th
            annotated frame, starting with a seeded offset).
    """
    if not annotated:
        return []
    if mode == "all":
        return list(annotated)
    rng = np.random.default_rng([seed, video_index])
    if mode == "one_per_video":
        return [annotated[int(rng.integers(len(annotated)))]]
    if mode == "every_k":
        require("data.every_k", every_k)
        return list(annotated[int(rng.integers(min(every_k, len(annotated)))) :: every_k])
    require("data.labels", mode)
    raise AssertionError(f"unhandled data.labels mode {mode!r}")
