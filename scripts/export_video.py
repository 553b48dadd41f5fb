"""Write one video of a data set as an mp4 or a folder of PNG frames (input for src/predict.py).

    python scripts/export_video.py out=val0.mp4 [data=synthetic] [split=val] [video=0] [frames=N]
    python scripts/export_video.py out=camvid_val data=camvid data.root=../shared/camvid frames=30

`out` ending in .mp4 gives a video (at `fps`, default 10), anything else a folder of frames named
000000.png, 000001.png, ... Other `key=value` arguments are Hydra overrides of conf/train.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from hydra.utils import instantiate

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.data.video_files import Mp4Writer
from ssltm.errors import DataError
from ssltm.inference.visualize import save_png
from ssltm.runs.config import compose_config

OPTIONS = {"out": None, "split": "val", "video": "0", "frames": None, "fps": "10"}


def export(out: str, overrides: list[str], split: str = "val", video: int = 0,
           frames: int | None = None, fps: float = 10.0) -> Path:
    cfg = compose_config("train", overrides, ROOT / "outputs")
    videos = instantiate(cfg.data.source).videos(split)
    if not 0 <= video < len(videos):
        raise DataError(f"video={video}: split {split!r} has {len(videos)} videos")
    clip = videos[video]
    count = min(frames or clip.num_frames, clip.num_frames)
    out_path = Path(out)
    if out_path.suffix.lower() == ".mp4":
        with Mp4Writer(out_path, fps) as writer:
            for t in range(count):
                writer.write(clip.frame(t))
    else:
        out_path.mkdir(parents=True, exist_ok=True)
        for t in range(count):
            save_png(out_path / f"{t:06d}.png", clip.frame(t))
    print(f"{clip.video_id}: {count} frames -> {out_path}")
    return out_path


def main(argv: list[str]) -> int:
    options, overrides = dict(OPTIONS), []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in options:
            options[key] = value
        else:
            overrides.append(arg)
    if not options["out"]:
        print("error: out=<file.mp4 | folder> is required", file=sys.stderr)
        return 2
    try:
        export(options["out"], overrides, options["split"], int(options["video"]),
               int(options["frames"]) if options["frames"] else None, float(options["fps"]))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
