"""CamVid, SegNet release (Brostow et al., ECCV 2008): 11 classes, driving videos.

Layout (`data.root`): `train/`, `trainannot/`, `val/`, `valannot/` (and `test/`, `testannot/`
where present) with files `<sequence>_<frame>.png`; the frame number counts the original 30 Hz
video. Label maps hold class ids 0..10, 11 = void (ignored, mapped to 255).
Training sequences (one labelled frame per second) are cut into videos of `video_len` frames, so
that the one-labelled-frame-per-video setting of VSPW can be built from them; `val/` is one
consecutive clip (15 Hz), every frame labelled.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ssltm.data.image_files import FileVideo, identity_mapping, problems_error
from ssltm.data.info import DatasetInfo
from ssltm.data.video import Video, VideoSource
from ssltm.errors import DataError

CAMVID_INFO = DatasetInfo(
    name="camvid",
    classes=("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence",
             "car", "pedestrian", "bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
             (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
             (0, 128, 192)),
)
CAMVID_VOID = 11
CAMVID_LABELS = identity_mapping(CAMVID_INFO.num_classes, void=[CAMVID_VOID])
_NAME = re.compile(r"^(?P<sequence>.+)_(?P<frame>f?\d+)\.png$")


class CamVidSource(VideoSource):
    """Args:
    root: the folder with train/, trainannot/, val/, valannot/ (test/, testannot/).
    video_len: training sequences are cut into videos of this many labelled frames (the last,
        shorter piece joins the previous video).
    """

    info = CAMVID_INFO

    def __init__(self, root: str, video_len: int = 10) -> None:
        if video_len < 1:
            raise DataError(f"data.source.video_len must be >= 1, got {video_len}")
        self.root = Path(root).expanduser()
        self.video_len = video_len

    def sequences(self, split: str) -> dict[str, list[tuple[Path, Path]]]:
        """(frame, label) paths per sequence, in temporal order; checks that they pair up."""
        images, labels = self.root / split, self.root / f"{split}annot"
        missing = [str(p) for p in (images, labels) if not p.is_dir()]
        if missing:
            raise DataError(f"CamVid at {self.root}: missing folder(s) {missing} (SegNet layout expected)")
        frames = {p.name for p in images.glob("*.png")}
        masks = {p.name for p in labels.glob("*.png")}
        problems = [f"frame without mask: {images / n}" for n in sorted(frames - masks)]
        problems += [f"mask without frame: {labels / n}" for n in sorted(masks - frames)]
        grouped: dict[str, list[tuple[int, Path, Path]]] = defaultdict(list)
        for name in sorted(frames & masks):
            match = _NAME.match(name)
            if match is None:
                problems.append(f"name is not <sequence>_<frame>.png: {images / name}")
                continue
            number = int(match["frame"].lstrip("f"))
            grouped[match["sequence"]].append((number, images / name, labels / name))
        if problems:
            raise problems_error(f"CamVid split {split!r} at {self.root}", problems)
        if not grouped:
            raise DataError(f"CamVid split {split!r}: the split is empty (no PNG frames in {images})")
        return {seq: [(f, m) for _, f, m in sorted(items)] for seq, items in sorted(grouped.items())}

    def videos(self, split: str) -> list[Video]:
        videos: list[Video] = []
        for sequence, pairs in self.sequences(split).items():
            starts = [0]
            if split == "train":
                starts = list(range(0, len(pairs), self.video_len))
                if len(starts) > 1 and len(pairs) - starts[-1] < self.video_len:
                    starts.pop()  # the short tail joins the previous video
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else len(pairs)
                piece = pairs[start:end]
                video_id = f"{sequence}_{i:03d}" if split == "train" else sequence
                frames, masks = [f for f, _ in piece], dict(enumerate(m for _, m in piece))
                videos.append(FileVideo(video_id, frames, masks, CAMVID_LABELS, sequence))
        return videos
