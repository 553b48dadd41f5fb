"""Write a copy of CamVid (SegNet layout) at a reduced resolution.

    python scripts/resize_camvid.py <camvid folder> <output folder> [--size 180 240] [--splits train val]

Frames and label maps are resized with the suite's one resampling rule (`resize_clip` in
src/ssltm/data/transforms.py: bilinear with antialiasing for frames, nearest for labels), which is
also what `data.train_transform.resize` / `data.eval_transform.resize` apply on the fly. Training
on the copy with those options set to the same size therefore sees the same frames (up to the
rounding of the copy to 8 bits), and decodes PNGs a quarter of the size: what
`experiment=study_camvid` reads (experiments/camvid/). Names and folders are kept, so the copy
is a CamVid folder for `data.root`. Existing files in the output folder are replaced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ssltm.data.image_files import read_mask, read_rgb
from ssltm.data.transforms import resize_clip, to_tensor_images
from ssltm.errors import DataError


def resize_pair(frame: Path, mask: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(frame H W 3 uint8, mask H W uint8) at `size`; raw mask values are kept (void included)."""
    images = to_tensor_images([read_rgb(frame)])
    labels = torch.from_numpy(read_mask(mask).astype(np.int64))[None]
    images, labels = resize_clip(images, labels, size)
    rgb = images[0].permute(1, 2, 0).mul(255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    return rgb, labels[0].to(torch.uint8).numpy()


def resize_split(src: Path, dst: Path, split: str, size: tuple[int, int]) -> int:
    images, labels = src / split, src / f"{split}annot"
    if not images.is_dir() or not labels.is_dir():
        raise DataError(f"{src}: no {split}/ and {split}annot/ folders (SegNet layout expected)")
    names = sorted(p.name for p in images.glob("*.png"))
    missing = [n for n in names if not (labels / n).is_file()]
    if missing:
        raise DataError(f"{labels}: no mask for {len(missing)} frame(s), e.g. {missing[0]}")
    (dst / split).mkdir(parents=True, exist_ok=True)
    (dst / f"{split}annot").mkdir(parents=True, exist_ok=True)
    for name in names:
        rgb, mask = resize_pair(images / name, labels / name, size)
        Image.fromarray(rgb).save(dst / split / name)
        Image.fromarray(mask).save(dst / f"{split}annot" / name)
    return len(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("H", "W"))
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    args = parser.parse_args(argv)
    if min(args.size) < 1:
        print(f"error: --size must be two positive integers, got {args.size}", file=sys.stderr)
        return 2
    if args.src.resolve() == args.dst.resolve():
        print(f"error: the output folder must differ from the input folder ({args.src})", file=sys.stderr)
        return 2
    try:
        for split in args.splits:
            count = resize_split(args.src, args.dst, split, tuple(args.size))
            print(f"{split}: {count} frames -> {args.dst / split} ({args.size[0]}x{args.size[1]})")
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
