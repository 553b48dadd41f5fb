"""Cityscapes (Cordts et al., CVPR 2016): 19 train classes, one labelled frame per 30-frame snippet.

Layout (`data.root`):
    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png            labelled frames
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png             their masks
    leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png   the 30-frame snippets
A labelled frame is the 20th frame of its snippet (frame numbers frame-19 .. frame+10). Each
labelled frame makes one video: its snippet (`sequence: true`), or the frame alone when the
sequence download is not there (`sequence: false`, which needs data.clip.num_frames=1).
Label ids become the 19 train ids through cityscapesscripts' own label table.
"""

from __future__ import annotations

import re
from pathlib import Path

from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABEL_TABLE

from ssltm.constants import IGNORE_INDEX
from ssltm.data.image_files import FileVideo, LabelMapping, problems_error
from ssltm.data.info import DatasetInfo
from ssltm.data.video import Video, VideoSource
from ssltm.errors import DataError

_TRAIN_LABELS = sorted(
    (lab for lab in CITYSCAPES_LABEL_TABLE if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId
)
CITYSCAPES_INFO = DatasetInfo(
    name="cityscapes",
    classes=tuple(lab.name.replace(" ", "_") for lab in _TRAIN_LABELS),
    palette=tuple(tuple(lab.color) for lab in _TRAIN_LABELS),
)
CITYSCAPES_LABELS = LabelMapping(
    {lab.id: lab.trainId if 0 <= lab.trainId < 255 else IGNORE_INDEX
     for lab in CITYSCAPES_LABEL_TABLE if 0 <= lab.id < 256},
    "Cityscapes label ids 0..33 (gtFine *_labelIds.png)",
)
_KEY = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)$")
_IMAGE, _MASK = "_leftImg8bit.png", "_gtFine_labelIds.png"


class CityscapesSource(VideoSource):
    """Args:
    root: the folder with leftImg8bit/, gtFine/ and (for sequence=true) leftImg8bit_sequence/.
    sequence: read the 30-frame snippet around each labelled frame.
    snippet_length, labelled_position: frames of a snippet and the labelled frame's place in it.
    """

    info = CITYSCAPES_INFO

    def __init__(
        self, root: str, sequence: bool = True, snippet_length: int = 30, labelled_position: int = 19
    ) -> None:
        if not 0 <= labelled_position < snippet_length:
            raise DataError(
                f"data.source: labelled_position {labelled_position} outside a snippet of {snippet_length}"
            )
        self.root = Path(root).expanduser()
        self.sequence = sequence
        self.snippet_length = snippet_length
        self.labelled_position = labelled_position

    def _folder(self, *parts: str) -> Path:
        folder = self.root.joinpath(*parts)
        if not folder.is_dir():
            hint = ""
            if parts[0] == "leftImg8bit_sequence":
                hint = " (download leftImg8bit_sequence_trainvaltest.zip, or set data.source.sequence=false)"
            raise DataError(f"Cityscapes at {self.root}: missing folder {folder}{hint}")
        return folder

    def videos(self, split: str) -> list[Video]:
        image_dir, mask_dir = self._folder("leftImg8bit", split), self._folder("gtFine", split)
        images = {p.name.removesuffix(_IMAGE): p for p in image_dir.glob(f"*/*{_IMAGE}")}
        masks = {p.name.removesuffix(_MASK): p for p in mask_dir.glob(f"*/*{_MASK}")}
        problems = [f"frame without mask: {images[k]}" for k in sorted(images.keys() - masks.keys())]
        problems += [f"mask without frame: {masks[k]}" for k in sorted(masks.keys() - images.keys())]
        sequences = self._folder("leftImg8bit_sequence", split) if self.sequence else None
        videos: list[Video] = []
        for key in sorted(images.keys() & masks.keys()):
            match = _KEY.match(key)
            if match is None:
                problems.append(f"name is not <city>_<seq>_<frame>{_IMAGE}: {images[key]}")
                continue
            frames, position = [images[key]], 0
            if sequences is not None:
                city, seq, first = match["city"], match["seq"], int(match["frame"]) - self.labelled_position
                width = len(match["frame"])
                names = [f"{city}_{seq}_{first + i:0{width}d}{_IMAGE}" for i in range(self.snippet_length)]
                frames = [sequences / city / name for name in names]
                absent = [p for p in frames if not p.is_file()]
                if absent:
                    problems.append(
                        f"snippet of {images[key].name}: {len(absent)} frame(s) missing, e.g. {absent[0]}"
                    )
                    continue
                position = self.labelled_position
            sequence = f"{match['city']}_{match['seq']}"
            videos.append(FileVideo(key, frames, {position: masks[key]}, CITYSCAPES_LABELS, sequence))
        if problems:
            raise problems_error(f"Cityscapes split {split!r} at {self.root}", problems)
        if not videos:
            raise DataError(f"Cityscapes split {split!r}: the split is empty (no *{_IMAGE} under {image_dir})")
        return videos
