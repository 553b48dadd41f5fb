"""No silent wrong result: broken weights, frame order, image modes, a signal at the last moment
(docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, SMALL, compose_config
from PIL import Image

import eval as eval_entry
import predict as predict_entry
import train as train_entry
from ssltm.data.image_files import natural_order, read_rgb
from ssltm.data.video_files import FrameReader
from ssltm.errors import CheckpointError, DataError, NonFiniteOutputError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train_entry.run(compose_config("train", [*SMALL, "callbacks.rich_progress_bar=null"], out))
    return out / "checkpoints" / "last.ckpt"


def _frames(folder, count, size=(48, 64)):
    folder.mkdir()
    for t in range(1, count + 1):  # ffmpeg's default names: 1.png ... 12.png, no padding
        Image.fromarray(np.full((*size, 3), t * 20, np.uint8)).save(folder / f"{t}.png")
    return folder


def test_a_checkpoint_with_nan_weights_is_refused_by_eval_and_predict(trained, tmp_path):
    checkpoint = torch.load(trained, weights_only=True)
    name = next(k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and k.endswith("weight"))
    checkpoint["state_dict"][name] = torch.full_like(checkpoint["state_dict"][name], float("nan"))
    broken = tmp_path / "nan.ckpt"
    torch.save(checkpoint, broken)
    with pytest.raises(CheckpointError, match=rf"{broken} holds NaN or infinite weights in 1 tensor\(s\), e.g. {name}"):
        eval_entry.run(compose_config("eval", [f"ckpt_path={broken}"], tmp_path / "eval"))
    frames = _frames(tmp_path / "frames", 2)
    with pytest.raises(CheckpointError, match="holds NaN or infinite weights"):
        predict_entry.run(compose_config("predict", [f"ckpt_path={broken}", f"input={frames}",
                                                     f"output={tmp_path / 'pred'}"], tmp_path))
    assert not (tmp_path / "eval" / "metrics.json").exists() and not (tmp_path / "pred" / "labels").exists()


def test_nan_logits_in_evaluation_are_an_error_not_a_score(trained, tmp_path, monkeypatch):
    from ssltm.inference.passes import Inference

    original = Inference.__call__

    def nan_inference(self, *args, **kwargs):
        return torch.full_like(original(self, *args, **kwargs), float("nan"))

    monkeypatch.setattr(Inference, "__call__", nan_inference)
    with pytest.raises(NonFiniteOutputError, match="output NaN or infinite values on video"):
        eval_entry.run(compose_config("eval", [f"ckpt_path={trained}"], tmp_path / "eval"))
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_frames_are_read_in_natural_order(tmp_path):
    folder = _frames(tmp_path / "frames", 12)
    assert [p.name for p in FrameReader(folder).files] == [f"{t}.png" for t in range(1, 13)]
    assert [p.name for p in natural_order(folder.iterdir())][:3] == ["1.png", "2.png", "3.png"]


@pytest.mark.parametrize("mode", ["I;16", "L", "P", "RGBA", "LA"])
def test_images_are_decoded_by_their_mode(tmp_path, mode):
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 4 x 16, 0..240
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)  # the same picture at 16 bits
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 7)]))
    elif mode == "LA":
        image = Image.fromarray(grey).convert("LA")
    else:
        image = Image.fromarray(grey).convert(mode)
    path = tmp_path / "frame.png"
    image.save(path)
    assert Image.open(path).mode == mode
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 16, 3)
    np.testing.assert_array_equal(rgb[..., 0], grey)  # not all white, not scaled wrong


def test_an_image_mode_that_is_no_frame_is_named(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(path)
    with pytest.raises(DataError, match=rf"{path}: a floating-point image"):
        read_rgb(path)


def test_sigterm_during_the_final_evaluation_exits_143_with_a_message(tmp_path):
    args = [sys.executable, str(ROOT / "src" / "train.py"), *SMALL, "data.num_workers=0", f"hydra.run.dir={tmp_path}",
            "callbacks.rich_progress_bar=null", "trainer.check_val_every_n_epoch=5",
            "+callbacks.kill._target_=run_helpers.SignalAtFinalEvaluation"]
    env = {"PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "offline", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 143, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "the final evaluation was interrupted by SIGTERM" in done.stderr
    assert f"python src/eval.py ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}" in done.stderr
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and not (tmp_path / "metrics.json").exists()


def test_a_failed_job_of_a_multirun_is_recorded_and_the_sweep_goes_on(tmp_path):
    args = [sys.executable, str(ROOT / "src" / "train.py"), "-m", *SMALL, "data.num_workers=0",
            "callbacks.rich_progress_bar=null", "model.stt.num_heads=0,2", f"hydra.sweep.dir={tmp_path}"]
    env = {"PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "offline", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "model.stt.num_heads" in (tmp_path / "0" / "error.txt").read_text()
    assert not (tmp_path / "0" / "metrics.json").exists() and (tmp_path / "1" / "metrics.json").is_file()
    assert f"1 job(s) of the sweep failed:\n  {tmp_path / '0'}: error: " in done.stderr
    # each job's log file holds its log lines: the error, or the run from start to result
    assert "model.stt.num_heads" in (tmp_path / "0" / "train.log").read_text()
    log = (tmp_path / "1" / "train.log").read_text()
    assert "training SSLTM with SupervisedMethod" in log and "GPU available" in log and "val (final weights" in log


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    from ssltm.runs import atomic_checkpoint_io
    from ssltm.errors import CheckpointWriteError

    target = tmp_path / "last.ckpt"
    atomic_checkpoint_io.atomic_torch_save({"step": 1}, target)

    def full_disk(obj, file):  # what torch.save raises when the disk fills up mid-write
        file.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(atomic_checkpoint_io.torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match=rf"could not write the checkpoint {target}: .*file write failed; "
                                                   "the previous one is kept"):
        atomic_checkpoint_io.atomic_torch_save({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_aggregate_names_a_half_written_metrics_json_and_counts_its_job_failed(tmp_path, capsys):
    import aggregate
    import yaml

    for job, text in (("0", '{"mIoU": 0.5, "mVC8": 0.9, "mVC16": 0.9}'), ("1", '{"mIoU": 0.4, "mV')):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={int(job) + 1}"]))
        (tmp_path / job / "metrics.json").write_text(text)
    jobs = aggregate.read_jobs(tmp_path)
    assert [j.status for j in jobs] == ["ok", "failed"]
    assert f"{tmp_path / '1' / 'metrics.json'} is unreadable or half-written" in capsys.readouterr().err
