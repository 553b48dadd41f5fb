"""What `src/predict.py` writes for each frame, and the comparison of two models.

Output folder:
    labels/<frame>.png    class ids (uint8), the data set's train ids
    colour/<frame>.png    the label map in the data set's palette
    overlay/<frame>.png   the frame with the colours blended in
    overlay.mp4           the overlays as a video
    compare/<frame>.png   (with a second checkpoint) frame | model A | model B | where they differ,
                          for the `top_k` frames where they disagree most
    compare.csv           every frame's share of pixels on which the two models disagree
    predict.json          what was run: checkpoints, input, frames, seconds, class shares
"""

from __future__ import annotations

import csv
import heapq
from pathlib import Path

import numpy as np

from ssltm.data.info import DatasetInfo
from ssltm.data.video_files import Mp4Writer
from ssltm.errors import ConfigError
from ssltm.inference.visualize import disagreement_image, overlay, panel, save_png

OUTPUTS = ("labels", "colour", "overlay", "video")


class PredictionWriter:
    """Writes one model's prediction of each frame (`outputs`: any of OUTPUTS)."""

    def __init__(
        self, folder: Path, info: DatasetInfo, outputs=OUTPUTS, alpha: float = 0.5, fps: float = 10.0
    ) -> None:
        unknown = sorted(set(outputs) - set(OUTPUTS))
        if unknown:
            raise ConfigError(f"save: unknown output(s) {unknown}; known: {', '.join(OUTPUTS)}")
        self.folder = Path(folder)
        self.info = info
        self.outputs = set(outputs)
        self.alpha = alpha
        for name in self.outputs - {"video"}:
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        self.video = Mp4Writer(self.folder / "overlay.mp4", fps) if "video" in self.outputs else None
        self.pixels = np.zeros(info.num_classes, np.int64)
        self.frames = 0

    def write(self, name: str, image: np.ndarray, label: np.ndarray) -> np.ndarray:
        """Writes the outputs of one frame; returns its overlay."""
        blended = overlay(image, label, self.info, self.alpha)
        if "labels" in self.outputs:
            save_png(self.folder / "labels" / f"{name}.png", label.astype(np.uint8))
        if "colour" in self.outputs:
            save_png(self.folder / "colour" / f"{name}.png", self.info.colourize(label))
        if "overlay" in self.outputs:
            save_png(self.folder / "overlay" / f"{name}.png", blended)
        if self.video is not None:
            self.video.write(blended)
        self.pixels += np.bincount(label.ravel(), minlength=self.info.num_classes)[: self.info.num_classes]
        self.frames += 1
        return blended

    def close(self) -> None:
        if self.video is not None:
            self.video.close()

    def class_shares(self) -> dict[str, float]:
        total = max(int(self.pixels.sum()), 1)
        return {n: round(float(p) / total, 6) for n, p in zip(self.info.classes, self.pixels) if p}


class Comparison:
    """Two models on the same frames: every frame's disagreement, and side-by-side panels of the
    `top_k` frames where they disagree most (kept in a bounded heap, written at the end)."""

    def __init__(self, folder: Path, names: tuple[str, str], top_k: int = 8) -> None:
        self.folder = Path(folder)
        self.names = names
        self.top_k = top_k
        self.rows: list[tuple[int, str, float]] = []
        self.heap: list[tuple[float, int, str, np.ndarray]] = []

    def add(self, t: int, name: str, image: np.ndarray, a: np.ndarray, b: np.ndarray,
            overlay_a: np.ndarray, overlay_b: np.ndarray) -> float:
        share = float((a != b).mean())
        self.rows.append((t, name, share))
        if self.top_k > 0 and (len(self.heap) < self.top_k or share > self.heap[0][0]):
            tiles = [("frame", image), (self.names[0], overlay_a), (self.names[1], overlay_b),
                     (f"differ: {100 * share:.1f}%", disagreement_image(a, b))]
            item = (share, t, name, panel(tiles, columns=2))  # 2 x 2
            if len(self.heap) < self.top_k:
                heapq.heappush(self.heap, item)
            else:
                heapq.heapreplace(self.heap, item)
        return share

    def close(self) -> list[dict]:
        """Writes the panels and compare.csv; returns the panels written, most disagreement first."""
        (self.folder / "compare").mkdir(parents=True, exist_ok=True)
        written = []
        for share, t, name, image in sorted(self.heap, reverse=True):
            path = self.folder / "compare" / f"{name}.png"
            save_png(path, image)
            written.append({"frame": t, "name": name, "disagreement": round(share, 6), "panel": str(path)})
        with open(self.folder / "compare.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["frame", "name", "disagreement"])
            writer.writerows((t, n, f"{s:.6f}") for t, n, s in self.rows)
        return written

    def mean_disagreement(self) -> float:
        return float(np.mean([s for _, _, s in self.rows])) if self.rows else float("nan")
