"""Checks a data set before anything trains on it, and sums it up.

Levels (`data.validate`):
    layout  the source's own layout checks (missing folders or split files, frames without masks,
            masks without frames), then: an empty split, frames of one video with different sizes, masks whose size differs from their frame.
            Sizes come from file headers, so this is cheap even for VSPW.
    full    layout, then every frame and mask is decoded: unreadable or truncated files and label
            values outside the data set's range are found, and the class histogram is counted.
    off     nothing.
Every defect found is collected, and one `DataError` lists the first few with their paths. Videos
shorter than a clip are no defect: they get a warning naming them and are served with clamped
frame indices.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from rich.progress import track

from ssltm.constants import IGNORE_INDEX
from ssltm.data.clips import ClipSampler
from ssltm.data.image_files import MAX_LISTED, FileVideo, image_size, problems_error, read_mask, read_rgb
from ssltm.data.info import DatasetInfo
from ssltm.data.video import Video
from ssltm.errors import DataError
from ssltm.utils.options import require


@dataclass
class SplitReport:
    """What a split holds. `histogram` counts pixels per class, then ignored pixels (full only)."""

    name: str
    split: str
    videos: int
    frames: int
    annotated: int
    sequences: int
    histogram: np.ndarray | None = field(default=None, repr=False)


def check_split(
    source, split: str, clip: ClipSampler | None = None, level: str = "full", progress: bool = True
) -> tuple[list[Video], SplitReport]:
    """Read the videos of `split` from `source` and check them at `level`."""
    videos = source.videos(split)
    return videos, check_videos(videos, source.info, split, clip, level, progress)


def check_videos(
    videos: list[Video],
    info: DatasetInfo,
    split: str,
    clip: ClipSampler | None = None,
    level: str = "full",
    progress: bool = True,
) -> SplitReport:
    """Check already listed videos; raises DataError listing every defect found."""
    require("data.validate", level)
    where = f"{info.name} split {split!r}"
    report = SplitReport(
        name=info.name,
        split=split,
        videos=len(videos),
        frames=sum(v.num_frames for v in videos),
        annotated=sum(len(v.annotated) for v in videos),
        sequences=len({getattr(v, "sequence", v.video_id) for v in videos}),
    )
    if level == "off":
        return report
    if not videos or report.frames == 0:
        raise DataError(f"{where}: the split is empty (no videos or no frames)")

    problems: list[str] = []
    if clip is not None:
        warn_short_videos(videos, clip, where)

    def check(video: Video) -> tuple[list[str], np.ndarray | None]:
        return _check_video(video, info, decode=level == "full")

    histogram = np.zeros(info.num_classes + 1, np.int64)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(check, videos)
        if progress:
            results = track(results, total=len(videos), description=f"checking {info.name} {split} ({level})")
        for found, counts in results:
            problems += found
            if counts is not None:
                histogram += counts
    if problems:
        raise problems_error(where, problems)
    if level == "full":
        report.histogram = histogram
    return report


def warn_short_videos(videos: list[Video], clip: ClipSampler, where: str) -> None:
    """Videos shorter than a clip still train and evaluate: the clip sampler repeats their first
    frame (as at the start of any video). One warning names them."""
    span = (clip.num_frames - 1) * clip.step + 1
    short = [f"{_name(v)} has {v.num_frames}" for v in videos if v.num_frames < span]
    if short:
        listed = "; ".join(short[:MAX_LISTED]) + (f"; and {len(short) - MAX_LISTED} more" if len(short) > MAX_LISTED else "")
        warnings.warn(
            f"{where}: {len(short)} video(s) shorter than a clip of data.clip (num_frames={clip.num_frames}, "
            f"step={clip.step} needs {span} frames), served with their first frame repeated: {listed}",
            stacklevel=3,
        )


def _name(video: Video) -> str:
    if isinstance(video, FileVideo) and video.frames:
        return f"{video.video_id} ({video.frames[0].parent})"
    return video.video_id


def _check_video(video: Video, info: DatasetInfo, decode: bool) -> tuple[list[str], np.ndarray | None]:
    """Defects of one video, and its class histogram when decoding."""
    counts = np.zeros(info.num_classes + 1, np.int64) if decode else None
    if not isinstance(video, FileVideo):  # generated in memory: only labels can be counted
        if decode:
            for t in video.annotated:
                counts += _histogram(video.label(t), info.num_classes)
        return [], counts
    problems: list[str] = []
    sizes = {}
    for t, path in enumerate(video.frames):
        try:
            sizes[t] = read_rgb(path).shape[:2] if decode else image_size(path)
        except DataError as err:
            problems.append(str(err))
    if len(set(sizes.values())) > 1:
        first = sizes[min(sizes)]
        odd = next(t for t, s in sizes.items() if s != first)
        problems.append(
            f"frames of one video differ in size: {video.frames[odd]} is {sizes[odd]}, "
            f"{video.frames[min(sizes)]} is {first}"
        )
    for t, path in video.masks.items():
        try:
            if decode:
                raw = read_mask(path)
                size = raw.shape
                counts += _histogram(video.mapping(raw, path), info.num_classes)
            else:
                size = image_size(path)
        except DataError as err:
            problems.append(str(err))
            continue
        if t in sizes and size != sizes[t]:
            problems.append(f"mask size {size} differs from its frame's {sizes[t]}: {path}")
    return problems, counts


def _histogram(label: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(label.ravel(), minlength=256)
    return np.concatenate([counts[:num_classes], counts[IGNORE_INDEX : IGNORE_INDEX + 1]])
