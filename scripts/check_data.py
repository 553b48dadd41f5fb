"""Check a data set's layout and print a summary: videos, frames, labelled frames, class histogram.

    python scripts/check_data.py data=camvid data.root=/path/to/camvid [splits=[train,val]]

Runs the same checks the data module runs before training; a defect stops it with a message that
names the offending files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SSLTM_ROOT", str(ROOT))

import numpy as np  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

import ssltm  # noqa: E402,F401  (registers config resolvers)
from ssltm.data.info import IGNORE_INDEX  # noqa: E402
from ssltm.utils.config import compose_config  # noqa: E402


def summarise(source, split: str) -> dict:
    videos = source.videos(split)
    histogram = np.zeros(source.info.num_classes + 1, np.int64)  # last bin: ignored pixels
    for video in track(videos, description=f"reading {split} labels"):
        for t in video.annotated:
            label = video.label(t)
            counts = np.bincount(label.ravel(), minlength=256)
            histogram[:-1] += counts[: source.info.num_classes]
            histogram[-1] += counts[IGNORE_INDEX]
    sequences = {getattr(v, "video_id", "").rsplit("_", 1)[0] for v in videos}
    return {
        "videos": len(videos),
        "sequences": len(sequences),
        "frames": sum(v.num_frames for v in videos),
        "labelled": sum(len(v.annotated) for v in videos),
        "histogram": histogram,
    }


def main(argv: list[str]) -> int:
    splits = ["train", "val"]
    overrides = []
    for arg in argv:
        if arg.startswith("splits="):
            splits = arg.split("=", 1)[1].strip("[]").split(",")
        else:
            overrides.append(arg)
    cfg = compose_config("train", overrides, ROOT / "outputs")
    source = instantiate(cfg.data.source)
    console = Console()
    try:
        results = {split: summarise(source, split) for split in splits}
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 1
    table = Table(title=f"{source.info.name}: {len(source.info.classes)} classes")
    table.add_column("")
    for split in splits:
        table.add_column(split, justify="right")
    for key in ("sequences", "videos", "frames", "labelled"):
        table.add_row(key, *[str(results[s][key]) for s in splits])
    names = [*source.info.classes, "(ignored)"]
    for i, name in enumerate(names):
        table.add_row(f"pixels {name}", *[f"{results[s]['histogram'][i]:,}" for s in splits])
    console.print(table)
    print(f"classes={source.info.num_classes} " + " ".join(f"{s}_frames={results[s]['frames']}" for s in splits))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
