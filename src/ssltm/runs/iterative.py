"""Iterative self-training in the manner of Naive-Student (Chen et al., ECCV 2020).

The baseline that SSLTM's Mean Teacher is compared with (supplementary Sec. 2.5, Fig. 3). One
command drives the stages, each in its own folder of the run:

    stage0_train_teacher    supervised on the labelled frames
    stage1_label            the teacher writes a pseudo-label PNG for every unlabelled frame
    stage2_train_student    a fresh network on labelled + pseudo-labelled frames
    (stage3_label, stage4_train_student_2, ... with `iterative.rounds` > 1)

A finished stage leaves `stage.json` and is skipped when the command runs again; an unfinished
training stage resumes from its `last.ckpt`. Wall time and the bytes each stage wrote to disk
(checkpoints, logs, pseudo-labels: file sizes measured in its folders) go to `method_stats.json`.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.progress import track

from ssltm.constants import IGNORE_INDEX
from ssltm.data.pseudo_labels import write_pseudo_label
from ssltm.errors import ConfigError
from ssltm.methods.mean_teacher import pseudo_labels
from ssltm.runs.checkpoints import config_targets, load_trained
from ssltm.runs.fit import fit
from ssltm.runs.lightning import RUN_DEFINITION
from ssltm.utils.diskstats import disk_usage, write_json


def _stage_done(folder: Path) -> dict | None:
    marker = folder / "stage.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _train_stage(cfg: DictConfig, folder: Path, pseudo_dir: Path | None, epochs: int) -> dict:
    sub = copy.deepcopy(cfg)
    with open_dict(sub):
        sub.paths.output_dir = str(folder)
        sub.data.pseudo_label_dir = str(pseudo_dir) if pseudo_dir else None
        sub.trainer.max_epochs = epochs
        last = folder / "checkpoints" / "last.ckpt"
        sub.ckpt_path = str(last) if last.is_file() else None  # resume an interrupted stage
        sub.pop("iterative")
    result, objects = fit(sub)
    trainer = objects["trainer"]
    final = folder / "checkpoints" / "last.ckpt"  # the final weights (fit writes them), never
    if not final.is_file():                        # a checkpoint chosen on the evaluation split
        final = folder / "checkpoints" / "final.ckpt"  # no checkpointing (fast_dev_run, callbacks=none)
        trainer.save_checkpoint(final)
    return {"checkpoint": str(final), "mIoU": result.get("mIoU"), "mVC8": result.get("mVC8")}


@torch.no_grad()
def _label_stage(cfg: DictConfig, checkpoint: str, folder: Path, threshold: float) -> dict:
    """Pseudo-label every unlabelled training frame with the network of `checkpoint` (only the
    first batch under `trainer.fast_dev_run`, like the training stages)."""
    # the network its evaluation used; the stage's file is checked like any checkpoint, trusting
    # the classes this run was configured with
    own = config_targets({key: OmegaConf.to_container(cfg[key], resolve=False) for key in RUN_DEFINITION if key in cfg})
    trained = load_trained(checkpoint, allow=own)
    model, inference = trained.network, trained.inference
    loader = instantiate(cfg.data, pseudo_label_dir=None).unlabelled_eval_dataloader()
    written = kept = total = frames = 0
    for index, batch in enumerate(track(loader, description="writing pseudo-labels")):
        if cfg.trainer.get("fast_dev_run") and index > 0:
            break
        meta = batch["meta"]
        logits = inference(model, batch["frames"], batch["reference"], meta["frame_indices"], meta["reference_index"])
        labels, _ = pseudo_labels(logits, threshold)
        for label, video, t in zip(labels, batch["meta"]["video"], batch["meta"]["query"].tolist()):
            written += write_pseudo_label(folder, video, t, label.to(torch.uint8).numpy())
        kept += int((labels != IGNORE_INDEX).sum())
        total += labels.numel()
        frames += labels.shape[0]
    return {"frames": frames, "pseudo_label_bytes": written, "coverage": kept / max(total, 1)}


def run_iterative(cfg: DictConfig) -> tuple[dict, dict]:
    """All stages of `cfg.iterative` in `cfg.paths.output_dir`; returns the last student's result."""
    it = cfg.iterative
    if it.rounds < 1:
        raise ConfigError(f"iterative.rounds must be >= 1, got {it.rounds}")
    if not 0.0 <= it.confidence_threshold <= 1.0:
        raise ConfigError(f"iterative.confidence_threshold must be in [0, 1], got {it.confidence_threshold}")
    root = Path(cfg.paths.output_dir)
    stages, pseudo_dir, checkpoint, index = [], None, None, 0
    for round_ in range(it.rounds + 1):
        name = "teacher" if round_ == 0 else ("student" if round_ == 1 else f"student_{round_}")
        epochs = it.teacher_epochs if round_ == 0 else it.student_epochs
        jobs = [(f"stage{index}_train_{name}", "train")]
        if round_ < it.rounds:
            jobs.append((f"stage{index + 1}_label", "label"))
        for folder_name, kind in jobs:
            folder = root / folder_name
            record = _stage_done(folder)
            if record is None:
                start = time.perf_counter()
                if kind == "train":
                    outputs = _train_stage(cfg, folder, pseudo_dir, epochs)
                else:
                    outputs = _label_stage(cfg, checkpoint, folder, it.confidence_threshold)
                record = {"name": folder_name, "kind": kind, "wall_seconds": time.perf_counter() - start,
                          "disk_bytes": disk_usage(folder), **outputs}
                write_json(folder / "stage.json", record)
            stages.append(record)
            if kind == "train":
                checkpoint = record["checkpoint"]
            else:
                pseudo_dir = folder
            index += 1
    stats = {
        "method": "iterative",
        "stages": stages,
        "wall_seconds": sum(s["wall_seconds"] for s in stages),
        "disk_bytes": sum(s["disk_bytes"]["total"] for s in stages),
        "pseudo_label_bytes": sum(s.get("pseudo_label_bytes", 0) for s in stages),
    }
    last_train = root / next(s["name"] for s in reversed(stages) if s["kind"] == "train") / "method_stats.json"
    if last_train.is_file():  # the network's size, as the one-run methods report it
        stats["parameters"] = json.loads(last_train.read_text()).get("parameters")
    write_json(root / "method_stats.json", stats)
    final = root / stages[-1]["name"] / "metrics.json"
    result = json.loads(final.read_text())
    (root / "metrics.json").write_text(final.read_text())
    return result, {"stats": stats}
