"""VSPW (Miao et al., CVPR 2021): 124 classes, 3,536 videos at 15 fps, every frame annotated.

Layout (`data.root`, the extracted VSPW_480p folder):
    train.txt, val.txt, test.txt      one video id a line
    data/<video>/origin/<frame>.jpg   frames
    data/<video>/mask/<frame>.png     masks (absent for test videos)
Raw masks: 0 = "others" (ignored), v in 1..124 is class v-1, 254 and 255 are ignored. The paper's
semi-supervised setting exposes one labelled frame per training video (`data.labels=one_per_video`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssltm.constants import IGNORE_INDEX
from ssltm.data.image_files import FileVideo, LabelMapping, natural_order, problems_error
from ssltm.data.info import DatasetInfo
from ssltm.data.video import Video, VideoSource
from ssltm.errors import DataError

VSPW_CLASSES = (
    "wall", "ceiling", "door", "stair", "ladder", "escalator", "Playground_slide",
    "handrail_or_fence", "window", "rail", "goal", "pillar", "pole", "floor", "ground", "grass",
    "sand", "athletic_field", "road", "path", "crosswalk", "building", "house", "bridge", "tower",
    "windmill", "well_or_well_lid", "other_construction", "sky", "mountain", "stone", "wood", "ice",
    "snowfield", "grandstand", "sea", "river", "lake", "waterfall", "water",
    "billboard_or_Bulletin_Board", "sculpture", "pipeline", "flag", "parasol_or_umbrella",
    "cushion_or_carpet", "tent", "roadblock", "car", "bus", "truck", "bicycle", "motorcycle",
    "wheeled_machine", "ship_or_boat", "raft", "airplane", "tyre", "traffic_light", "lamp",
    "person", "cat", "dog", "horse", "cattle", "other_animal", "tree", "flower", "other_plant",
    "toy", "ball_net", "backboard", "skateboard", "bat", "ball",
    "cupboard_or_showcase_or_storage_rack", "box", "traveling_case_or_trolley_case", "basket",
    "bag_or_package", "trash_can", "cage", "plate", "tub_or_bowl_or_pot", "bottle_or_cup",
    "barrel", "fishbowl", "bed", "pillow", "table_or_desk", "chair_or_seat", "bench", "sofa",
    "shelf", "bathtub", "gun", "commode", "roaster", "other_machine", "refrigerator",
    "washing_machine", "Microwave_oven", "fan", "curtain", "textiles", "clothes",
    "painting_or_poster", "mirror", "flower_pot_or_vase", "clock", "book", "tool", "blackboard",
    "tissue", "screen_or_television", "computer", "printer", "Mobile_phone", "keyboard",
    "other_electronic_product", "fruit", "food", "instrument", "train",
)  # fmt: skip  (spelled as in VSPW's label_num_dic_final.json)
VSPW_NUM_CLASSES = len(VSPW_CLASSES)  # 124


def bit_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """PASCAL VOC's colour map for n classes: the bits of the index spread over R, G and B.
    Entry 0 (black) is skipped, so that black stays "ignored" in colourised masks."""
    colours = []
    for index in range(1, n + 1):
        rgb, c = [0, 0, 0], index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        colours.append(tuple(rgb))
    return tuple(colours)


VSPW_INFO = DatasetInfo("vspw", VSPW_CLASSES, bit_palette(VSPW_NUM_CLASSES))
VSPW_LABELS = LabelMapping(
    {0: IGNORE_INDEX, 254: IGNORE_INDEX, 255: IGNORE_INDEX} | {v: v - 1 for v in range(1, VSPW_NUM_CLASSES + 1)},
    f"0 (others, ignored), 1..{VSPW_NUM_CLASSES}, 254 or 255 (ignored)",
)


def remap_vspw_mask(raw: np.ndarray, path: Path | str = "mask") -> np.ndarray:
    """Raw VSPW mask values -> train ids (0..123, IGNORE_INDEX for 0, 254 and 255)."""
    return VSPW_LABELS(raw, path)


def read_split_file(path: Path) -> list[str]:
    """Video ids of a VSPW split file, one a line, blank lines skipped."""
    if not path.is_file():
        raise DataError(f"VSPW: missing split file {path} (train.txt / val.txt / test.txt expected)")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"VSPW: {path} lists no videos (the split is empty)")
    seen: set[str] = set()
    twice = sorted({i for i in ids if i in seen or seen.add(i)})
    if twice:
        raise DataError(f"VSPW: {path} lists {len(twice)} video(s) more than once: {', '.join(twice[:5])}")
    return ids


class VSPWSource(VideoSource):
    """Args:
    root: the folder with train.txt, val.txt, test.txt and data/.
    """

    info = VSPW_INFO

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()

    def videos(self, split: str) -> list[Video]:
        data = self.root / "data"
        if not data.is_dir():
            raise DataError(f"VSPW at {self.root}: missing folder {data}")
        videos, problems = [], []
        for video_id in read_split_file(self.root / f"{split}.txt"):
            origin, mask_dir = data / video_id / "origin", data / video_id / "mask"
            if not origin.is_dir():
                problems.append(f"missing frame folder of video {video_id!r} listed in {split}.txt: {origin}")
                continue
            frames = natural_order(origin.glob("*.jpg"))
            if not frames:
                problems.append(f"no frames (*.jpg) in {origin}")
                continue
            masks: dict[int, Path] = {}
            if mask_dir.is_dir():  # test videos have none
                stems = {p.stem: t for t, p in enumerate(frames)}
                mask_files = natural_order(mask_dir.glob("*.png"))
                masks = {stems[m.stem]: m for m in mask_files if m.stem in stems}
                problems += [f"mask without frame: {m}" for m in mask_files if m.stem not in stems]
                problems += [
                    f"frame without mask: {p}" for t, p in enumerate(frames) if t not in masks
                ]
            elif split != "test":
                problems.append(f"missing mask folder of a {split} video: {mask_dir}")
            videos.append(FileVideo(video_id, frames, masks, VSPW_LABELS))
        if problems:
            raise problems_error(f"VSPW split {split!r} at {self.root}", problems)
        return videos
