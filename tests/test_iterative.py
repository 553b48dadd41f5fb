"""Iterative self-training: the stages run from one command, write readable pseudo-labels,
measure their cost, and are skipped when already done."""

from __future__ import annotations

import json

import numpy as np
import torch
from hydra.utils import instantiate
from PIL import Image

import train as train_entry
from ssltm.data.dataset import ClipDataset


def assert_pseudo_labels_are_the_teachers_argmax(cfg, checkpoint: str, labels_dir) -> None:
    """Threshold 0: each pseudo-label PNG is the argmax of the teacher stage's network on that
    frame's evaluation clip, pixel for pixel (read back through the frame's own file name)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    teacher = instantiate(state["ssltm_run_config"]["model"])
    teacher.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()
                             if k.startswith("model.")})
    teacher.eval()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    unlabelled = dm.unlabelled_set
    dataset = ClipDataset(unlabelled.videos, unlabelled.items, dm.clip, dm.eval_transform,
                          train=False, with_label=False)
    for index in (0, len(dataset) // 2, len(dataset) - 1):
        sample = dataset[index]
        with torch.no_grad():
            logits = teacher(sample["frames"][None], sample["reference"][None]).logits
        png = labels_dir / sample["meta"]["video"] / f"{sample['meta']['query']:06d}.png"
        label = torch.from_numpy(np.array(Image.open(png)).astype(np.int64))
        assert label.shape == (cfg.data.source.height, cfg.data.source.width)
        assert torch.equal(label, logits.argmax(1)[0]), png


def test_iterative_runs_its_stages_and_its_pseudo_labels_feed_the_data_module(train_cfg_factory, tmp_path):
    cfg = train_cfg_factory("method=iterative", "iterative.confidence_threshold=0.0", "model=per_frame")
    result, _ = train_entry.run(cfg)
    stats = json.loads((tmp_path / "method_stats.json").read_text())
    names = [s["name"] for s in stats["stages"]]
    assert names == ["stage0_train_teacher", "stage1_label", "stage2_train_student"]
    assert all(s["wall_seconds"] > 0 for s in stats["stages"])
    student = json.loads((tmp_path / "stage2_train_student" / "method_stats.json").read_text())
    assert stats["parameters"] == student["parameters"] > 0  # the network's size, for aggregate.py

    labels_dir = tmp_path / "stage1_label"
    pngs = sorted(labels_dir.rglob("*.png"))
    videos, frames = cfg.data.source.train_videos, cfg.data.source.num_frames
    assert len(pngs) == videos * (frames - 1)  # every unlabelled frame
    assert stats["pseudo_label_bytes"] == sum(p.stat().st_size for p in pngs) > 0
    assert stats["stages"][1]["disk_bytes"]["pseudo_labels"] == stats["pseudo_label_bytes"]
    assert stats["stages"][0]["disk_bytes"]["checkpoints"] > 0
    assert_pseudo_labels_are_the_teachers_argmax(cfg, stats["stages"][0]["checkpoint"], labels_dir)

    dm = instantiate(cfg.data, pseudo_label_dir=str(labels_dir))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))[0]
    assert batch["pseudo"]["label"].shape == batch["labelled"]["label"].shape
    assert 0.0 <= result["mIoU"] <= 1.0 and (tmp_path / "metrics.json").is_file()

    # a second run finds every stage done and redoes nothing
    before = {p: p.stat().st_mtime_ns for p in pngs}
    again, _ = train_entry.run(cfg)
    assert again["mIoU"] == result["mIoU"]
    assert {p: p.stat().st_mtime_ns for p in pngs} == before


def test_mean_teacher_and_supervised_measure_their_disk_bytes(train_cfg_factory, tmp_path):
    for method in ("mean_teacher", "supervised"):
        out = tmp_path / method
        cfg = train_cfg_factory(f"method={method}", "model=per_frame", output_dir=out)
        train_entry.run(cfg)
        stats = json.loads((out / "method_stats.json").read_text())
        assert stats["disk_bytes"]["pseudo_labels"] == 0 and stats["disk_bytes"]["checkpoints"] > 0
        assert stats["wall_seconds"] > 0
