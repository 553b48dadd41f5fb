"""What every data set provides: videos whose frames and label maps can be read by index."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ssltm.data.info import DatasetInfo


class Video(ABC):
    """One video. Frames are indexed 0..num_frames-1 in temporal order."""

    video_id: str
    num_frames: int
    #: frames that have ground truth, in order (all of them for the synthetic set)
    annotated: list[int]

    @abstractmethod
    def frame(self, t: int) -> np.ndarray:
        """RGB image, H W 3, uint8."""

    @abstractmethod
    def label(self, t: int) -> np.ndarray:
        """Label map in train ids, H W, uint8; IGNORE_INDEX where unknown. Only for annotated t."""


class VideoSource(ABC):
    """A data set: its `DatasetInfo` and its videos per split."""

    info: DatasetInfo

    @abstractmethod
    def videos(self, split: str) -> list[Video]:
        """The videos of `split` ("train", "val" or "test"), in a fixed order."""
