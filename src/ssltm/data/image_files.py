"""Videos read from image files: what CamVid, VSPW and Cityscapes share.

A data set on disk is a list of `FileVideo`s: the frame paths of a video in temporal order and the
mask paths of its annotated frames. Raw mask values become train ids through the data set's
`LabelMapping` (one lookup table, -1 marking values the data set never uses). Any unreadable file
or unexpected mask value raises `DataError` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from ssltm.constants import IGNORE_INDEX
from ssltm.data.video import Video
from ssltm.errors import DataError

#: offending paths listed in one error message; the count of the rest follows them
MAX_LISTED = 5
_DIGITS = re.compile(r"(\d+)")


def natural_key(path: Path | str) -> tuple:
    """Sort key of a frame's file name in natural order: `2.png` before `10.png` (ffmpeg's
    unpadded numbering), zero-padded names in their usual order. The one frame-order rule of
    every place that lists frames."""
    name = Path(path).name
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name) if part)


def natural_order(paths: Iterable[Path]) -> list[Path]:
    """`paths` sorted by `natural_key`."""
    return sorted(paths, key=natural_key)


def problems_error(what: str, problems: list[str]) -> DataError:
    """One error for many defects: the count, then the first MAX_LISTED of them, one a line."""
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return DataError(f"{what}: {len(problems)} problem(s):\n  {shown}{more}")


class LabelMapping:
    """Raw mask values -> train ids.

    Args:
        mapping: raw value -> train id (0..num_classes-1) or IGNORE_INDEX.
        description: the valid raw values in words, for error messages ("0..11").
    Raw values absent from `mapping` are errors.
    """

    def __init__(self, mapping: Mapping[int, int], description: str) -> None:
        self.lut = np.full(256, -1, np.int16)
        for raw, train_id in mapping.items():
            self.lut[raw] = train_id
        self.description = description

    def __call__(self, raw: np.ndarray, path: Path | str = "mask") -> np.ndarray:
        mapped = self.lut[raw]
        if (mapped < 0).any():
            bad = np.unique(raw[mapped < 0])
            raise DataError(
                f"{path}: label values must be {self.description}, found {bad[:10].tolist()}"
            )
        return mapped.astype(np.uint8)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H W 3 uint8, decoded by its mode: 8-bit RGB, grey and palette images as
    they are, 16-bit grey and RGB scaled from 0-65535 to 0-255, RGBA and LA with their alpha
    dropped. DataError naming the file if it cannot be decoded or has another mode."""
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb8(image, path)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: unreadable or truncated image ({err})") from None


def _to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("RGB", "L", "P", "RGBA", "LA", "PA", "CMYK", "YCbCr", "1"):
        return np.array(image.convert("RGB"))
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit grey (PIL reads some as 32-bit "I")
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or grey.max() > 255 else 255.0
        grey = np.clip(np.round(grey * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        raise DataError(f"{path}: a floating-point image (mode F) is not a video frame")
    raise DataError(f"{path}: image mode {mode!r} is not supported (8/16-bit grey or RGB, palette, RGBA expected)")


def read_mask(path: Path) -> np.ndarray:
    """A single-channel mask file as H W uint8 (raw values)."""
    try:
        with Image.open(path) as image:
            mask = np.array(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: unreadable or truncated mask ({err})") from None
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DataError(f"{path}: a mask must be one 8-bit channel, got shape {mask.shape} {mask.dtype}")
    return mask


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: unreadable image ({err})") from None


class FileVideo(Video):
    """A video whose frames and masks are image files.

    Args:
        video_id: name of the video (unique within the split).
        frames: frame paths in temporal order; frame t is frames[t].
        masks: frame index -> mask path, for the annotated frames.
        mapping: raw mask values -> train ids.
        sequence: the recording the video was cut from (defaults to video_id).
    """

    def __init__(
        self,
        video_id: str,
        frames: list[Path],
        masks: dict[int, Path],
        mapping: LabelMapping,
        sequence: str | None = None,
    ) -> None:
        self.video_id = video_id
        self.sequence = sequence or video_id
        self.frames = list(frames)
        self.masks = dict(sorted(masks.items()))
        self.mapping = mapping
        self.num_frames = len(self.frames)
        self.annotated = list(self.masks)

    def frame(self, t: int) -> np.ndarray:
        return read_rgb(self.frames[t])

    def label(self, t: int) -> np.ndarray:
        path = self.masks[t]
        return self.mapping(read_mask(path), path)

    def files(self) -> Iterable[Path]:
        yield from self.frames
        yield from self.masks.values()


def identity_mapping(num_classes: int, void: Iterable[int] = ()) -> LabelMapping:
    """Masks that hold train ids already, with some raw values meaning "ignore"."""
    void = list(void)
    mapping = {v: v for v in range(num_classes)} | {v: IGNORE_INDEX for v in void}
    words = f"0..{num_classes - 1}" + (f" or {', '.join(map(str, void))} (ignored)" if void else "")
    return LabelMapping(mapping, words)
