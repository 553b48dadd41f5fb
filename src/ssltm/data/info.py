"""One place for what defines a data set: its class names, palette and ignore index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssltm.constants import IGNORE_INDEX


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB per class
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.palette):
            raise ValueError(f"{self.name}: {len(self.classes)} classes but {len(self.palette)} colours")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def colourize(self, label: np.ndarray) -> np.ndarray:
        """Label map (H W, class ids; ignore -> black) to an RGB image (H W 3, uint8)."""
        lut = np.zeros((256, 3), np.uint8)
        lut[: self.num_classes] = np.asarray(self.palette, np.uint8)
        return lut[label]

