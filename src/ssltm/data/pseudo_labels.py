"""Pseudo-labels on disk (iterative self-training): one PNG of train ids per unlabelled frame.

Layout: <root>/<video id>/<frame index, 6 digits>.png, IGNORE_INDEX (255) where the teacher was
not confident. The data module reads them back as the labels of "pseudo" clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ssltm.data.video import Video


def pseudo_label_path(root: str | Path, video_id: str, t: int) -> Path:
    return Path(root) / video_id / f"{t:06d}.png"


def write_pseudo_label(root: str | Path, video_id: str, t: int, label: np.ndarray) -> int:
    """Write one label map (H W, uint8) atomically; returns the bytes written."""
    path = pseudo_label_path(root, video_id, t)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(label.astype(np.uint8)).save(tmp)
    tmp.replace(path)
    return path.stat().st_size


class PseudoLabelledVideo(Video):
    """A video whose labels are the pseudo-labels found on disk (its frames are the original's)."""

    def __init__(self, video: Video, root: str | Path) -> None:
        self.video = video
        self.root = Path(root)
        self.video_id = video.video_id
        self.num_frames = video.num_frames
        self.annotated = [
            t for t in range(video.num_frames) if pseudo_label_path(root, video.video_id, t).is_file()
        ]

    def frame(self, t: int) -> np.ndarray:
        return self.video.frame(t)

    def label(self, t: int) -> np.ndarray:
        path = pseudo_label_path(self.root, self.video_id, t)
        with Image.open(path) as image:
            label = np.array(image)
        if label.ndim != 2:
            raise ValueError(f"pseudo-label {path} is not a single-channel PNG (shape {label.shape})")
        return label
