"""Segment a video with a trained checkpoint and write label maps, colours, overlays and an mp4:

    python src/predict.py ckpt_path=PATH input=<folder of frames | video file> [output=FOLDER]
    python src/predict.py ckpt_path=A compare_ckpt_path=B input=... names=[with_STT,without_STT]

Frames are read one at a time and segmented with the temporal context of evaluation (clip and
reference frame from the earlier frames), so memory stays flat on long videos. The outputs are
listed in `ssltm/inference/outputs.py`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import Progress

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.data.video_files import FrameReader
from ssltm.errors import CheckpointError, ConfigError, find_user_error, user_error_message
from ssltm.inference.outputs import Comparison, PredictionWriter
from ssltm.runs.checkpoints import load_trained
from ssltm.utils.diskstats import write_json


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: no CUDA device on this machine (use device=cpu)")
    return name


#: what a prediction writes into its output folder (besides a folder per compared model)
OUTPUTS = ("labels", "colour", "overlay", "overlay.mp4", "compare", "compare.csv", "predict.json")
#: Hydra's own files in its run folder (the default output): not outputs of an earlier prediction
HYDRA_FILES = (".hydra",)


def check_names(names: list) -> None:
    """The compared models' titles also name a folder inside `output`: plain names only."""
    for name in names:
        text = str(name)
        if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text or text.startswith("."):
            raise ConfigError(f"names: {text!r} cannot name a folder inside output (no path separators, no leading dot)")


def prepare_output(output: Path, overwrite: bool, compared: list[str]) -> None:
    """Refuse an output folder that already holds files, so that a new prediction never mixes
    with an older one; with `overwrite=true`, clear the outputs of the earlier prediction first."""
    if not output.is_dir():
        return
    present = sorted(p for p in output.iterdir() if p.name not in HYDRA_FILES and p.suffix != ".log")
    if not present:
        return
    if not overwrite:
        shown = ", ".join(p.name for p in present[:5]) + (", ..." if len(present) > 5 else "")
        raise ConfigError(
            f"output: {output} already holds files ({shown}); choose another folder, or add "
            "overwrite=true to replace the earlier prediction"
        )
    ours = {*OUTPUTS, *compared}
    for path in present:
        if path.name in ours:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def run(cfg: DictConfig) -> dict:
    """Predict every frame of `cfg.input`; returns the summary written to predict.json."""
    start = time.perf_counter()
    reader = FrameReader(cfg.input)
    device = resolve_device(cfg.device)
    allow = cfg.get("allow_targets") or ()
    model = load_trained(cfg.ckpt_path, cfg.network, allow)
    if cfg.compare_ckpt_path and len(cfg.names) != 2:
        raise ConfigError(f"names: give the two models' titles, e.g. names=[A,B]; got {list(cfg.names)}")
    if cfg.compare_ckpt_path:
        check_names(list(cfg.names))
    other = load_trained(cfg.compare_ckpt_path, cfg.compare_network, allow) if cfg.compare_ckpt_path else None
    if other is not None and other.info.classes != model.info.classes:
        raise CheckpointError(
            f"compare_ckpt_path: {other.path} predicts the classes of {other.info.name!r}, "
            f"{cfg.ckpt_path} those of {model.info.name!r}"
        )
    output = Path(cfg.output or cfg.paths.output_dir)
    prepare_output(output, cfg.get("overwrite", False), [*cfg.names[1:2]] if cfg.compare_ckpt_path else [])
    fps = cfg.fps or reader.fps or 10.0
    writer = PredictionWriter(output, model.info, cfg.save, cfg.alpha, fps)
    writers = [writer]
    comparison = None
    if other is not None:
        names = tuple(cfg.names)
        writers.append(PredictionWriter(output / names[1], other.info, cfg.save, cfg.alpha, fps))
        comparison = Comparison(output, names, cfg.top_k)
    streams = [m.streaming(device, cfg.cache_features) for m in (model, other) if m is not None]

    total = len(reader) or None
    if cfg.max_frames:
        total = min(total or cfg.max_frames, cfg.max_frames)
    console = Console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"predicting {reader.path.name}", total=total)
        for t, (name, image) in enumerate(zip(reader.names(), reader)):
            if cfg.max_frames and t >= cfg.max_frames:
                break
            labels = [stream.push(image).argmax(0).numpy() for stream in streams]
            overlays = [w.write(name, image, label) for w, label in zip(writers, labels, strict=True)]
            if comparison is not None:
                comparison.add(t, name, image, *labels, *overlays)
            progress.advance(task)
    for w in writers:
        w.close()

    summary = {
        "checkpoint": str(cfg.ckpt_path), "network": cfg.network, "input": str(reader.path),
        "output": str(output), "dataset": model.info.name, "frames": writer.frames, "device": device,
        "seconds": round(time.perf_counter() - start, 3), "class_shares": writer.class_shares(),
    }
    if comparison is not None:
        summary["compare"] = {
            "checkpoint": str(cfg.compare_ckpt_path), "names": list(cfg.names),
            "mean_disagreement": round(comparison.mean_disagreement(), 6), "panels": comparison.close(),
        }
    write_json(output / "predict.json", summary)
    console.print(
        f"{writer.frames} frames in {summary['seconds']:.1f} s ({writer.frames / summary['seconds']:.2f} frames/s)"
        f" -> {output}"
        + (f"\nmean disagreement {100 * summary['compare']['mean_disagreement']:.2f}% of pixels; "
           f"panels in {output / 'compare'}" if comparison is not None else ""),
        soft_wrap=True,
    )
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except Exception as err:  # a user error, possibly wrapped by Hydra's instantiate: one line
        user = find_user_error(err)
        if user is None:
            raise
        raise SystemExit(user_error_message(user)) from None


if __name__ == "__main__":
    main()
