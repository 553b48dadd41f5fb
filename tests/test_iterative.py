"""Iterative self-training: the stages run from one command, write readable pseudo-labels,
measure their cost, and are skipped when already done."""

from __future__ import annotations

import json

import numpy as np
from hydra.utils import instantiate
from PIL import Image

import train as train_entry
from ssltm.data.info import IGNORE_INDEX


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
    label = np.array(Image.open(pngs[0]))
    assert label.shape == (cfg.data.source.height, cfg.data.source.width)
    assert label.max() < 7 or label.max() == IGNORE_INDEX

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
