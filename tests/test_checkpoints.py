"""Checkpoints written before a change of the code still load: the one loader (runs/checkpoints.py)
moves the `_target_`s of older versions, and `src/eval.py` and `src/predict.py` use it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SMALL, compose_config
from hydra.utils import instantiate
from PIL import Image

import eval as eval_entry
import predict as predict_entry
from ssltm.errors import CheckpointError
from ssltm.runs.checkpoints import MOVED_TARGETS, load_trained

BEFORE = Path(__file__).parent / "data" / "checkpoints_before_relayer"


def rebuilt_checkpoint(name: str, path: Path) -> dict:
    """A checkpoint with the run config and state-dict layout (names, shapes, dtypes) that an older
    commit wrote (tests/data/checkpoints_before_relayer/<name>.json), its weights drawn at random."""
    spec = json.loads((BEFORE / f"{name}.json").read_text())
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, (shape, dtype) in spec["state_dict"].items():
        kind = getattr(torch, dtype)
        if not kind.is_floating_point:
            state[key] = torch.zeros(shape, dtype=kind)
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape, dtype=kind)
        else:  # small weights of both signs: a finite network (evaluation refuses NaN outputs)
            state[key] = ((torch.rand(shape, generator=generator) - 0.5) * 0.1).to(kind)
    checkpoint = {"state_dict": state, "ssltm_run_config": spec["ssltm_run_config"],
                  "pytorch-lightning_version": spec["pytorch-lightning_version"]}
    torch.save(checkpoint, path)
    return spec


@pytest.mark.parametrize("name", ["mean_teacher", "iterative_student", "per_frame"])
def test_a_checkpoint_from_before_the_relayer_evaluates_and_predicts(name, tmp_path):
    path = tmp_path / f"{name}.ckpt"
    spec = rebuilt_checkpoint(name, path)
    old_targets = set(json.dumps(spec["ssltm_run_config"]).split('"')) & set(MOVED_TARGETS)
    assert old_targets, "the stored config should hold a _target_ that has moved since"
    if name == "per_frame":  # its neck was renamed `decoder` when it became a NeckSegmenter
        assert any(".neck." in key for key in spec["state_dict"])

    result, objects = eval_entry.run(compose_config("eval", [f"ckpt_path={path}"], tmp_path / "eval"))
    assert set(result) >= {"mIoU", "mVC8", "mVC16"} and 0.0 <= result["mIoU"] <= 1.0
    assert type(objects["method"]).__module__.startswith("ssltm.methods.")

    trained = load_trained(path)
    assert trained.info.name == "synthetic" and not trained.network.training
    frames = tmp_path / "frames"
    frames.mkdir()
    video = instantiate(compose_config("train", SMALL, tmp_path).data.source).videos("val")[0]
    for t in range(3):
        Image.fromarray(video.frame(t)).save(frames / f"{t:06d}.png")
    summary = predict_entry.run(compose_config(
        "predict", [f"ckpt_path={path}", f"input={frames}", f"output={tmp_path / 'pred'}"], tmp_path))
    assert summary["frames"] == 3
    assert np.asarray(Image.open(tmp_path / "pred" / "labels" / "000000.png")).shape == video.frame(0).shape[:2]


class _CreatesAFile:
    """Unpickling this calls open(path, "w"): a stand-in for a checkpoint that runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_by_eval_and_predict_without_running_it(tmp_path):
    marker = tmp_path / "payload_ran"
    crafted = tmp_path / "shared.ckpt"
    spec = json.loads((BEFORE / "per_frame.json").read_text())
    torch.save({"state_dict": {}, "ssltm_run_config": spec["ssltm_run_config"], "extra": _CreatesAFile(marker)},
               crafted)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=rf"ckpt_path: {crafted} holds objects other than tensors"):
        eval_entry.run(compose_config("eval", [f"ckpt_path={crafted}"], tmp_path / "eval"))
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(frames / "000000.png")
    with pytest.raises(CheckpointError, match="holds objects other than tensors"):
        predict_entry.run(compose_config(
            "predict", [f"ckpt_path={crafted}", f"input={frames}", f"output={tmp_path / 'pred'}"], tmp_path))
    assert not marker.exists(), "loading the checkpoint ran code from it"

    proc = subprocess.run([sys.executable, str(ROOT / "src" / "eval.py"), f"ckpt_path={crafted}",
                           f"paths.log_dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "holds objects other than tensors" in proc.stderr
    assert not marker.exists()
