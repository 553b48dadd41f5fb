"""Training and evaluation end to end: fast_dev_run per method and per experiment, a short run
whose checkpoint `src/eval.py` re-evaluates to the same numbers, and the command-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONF, ROOT, SMALL, compose_config

import eval as eval_entry
import train as train_entry
from ssltm.errors import ConfigError, DataError, user_error_message

METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("method", METHODS)
def test_fast_dev_run_trains_each_method(method, train_cfg_factory):
    cfg = train_cfg_factory(f"method={method}", "trainer.fast_dev_run=true")
    result, objects = train_entry.run(cfg)
    assert 0.0 <= result["mIoU"] <= 1.0
    stats = json.loads((Path(cfg.paths.output_dir) / "method_stats.json").read_text())
    assert stats["wall_seconds"] > 0
    if "trainer" in objects:  # iterative runs several trainers, one per stage
        assert objects["trainer"].global_step == 1


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(experiment, tmp_path, request):
    if "camvid" in experiment:  # real data: the CamVid copy in ../shared
        root = request.getfixturevalue("shared_dir") / "camvid"
        small = [f"data.root={root}", "backbone=tiny", "data.train_transform.crop_size=[64,96]",
                 "data.num_workers=0", "data.batch_size=2", "data.eval_batch_size=2"]
    else:
        small = SMALL
    cfg = compose_config("train", [f"experiment={experiment}", *small, "trainer.fast_dev_run=true"], tmp_path)
    result, _ = train_entry.run(cfg)
    assert "mIoU" in result


def test_short_run_checkpoints_and_eval_reproduces_its_metrics(train_cfg_factory, tmp_path):
    cfg = train_cfg_factory("trainer.max_epochs=2", output_dir=tmp_path / "train")
    result, objects = train_entry.run(cfg)
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    best = metrics["checkpoint"]  # the final weights: last.ckpt
    assert best == str(tmp_path / "train" / "checkpoints" / "last.ckpt") and os.path.isfile(best)
    assert metrics["mIoU"] == pytest.approx(result["mIoU"])
    assert set(metrics["per_class_iou"]) == set(objects["datamodule"].info.classes)
    assert (tmp_path / "train" / "csv" / "metrics.csv").is_file()

    eval_cfg = compose_config("eval", [f"ckpt_path={best}"], tmp_path / "eval")
    again, _ = eval_entry.run(eval_cfg)
    for key in ("mIoU", "mVC8", "mVC16"):
        assert again[key] == pytest.approx(result[key], abs=1e-9), key
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["split"] == "val"

    # the test split, and a sliding window of half the frame instead of the whole frame
    test_cfg = compose_config("eval", [f"ckpt_path={best}", "data.split=test", "inference=slide",
                                       "inference.crop_size=[32,32]"], tmp_path / "eval_test")
    on_test, objects = eval_entry.run(test_cfg)
    assert objects["datamodule"].split == "test" and objects["method"].inference.mode == "slide"
    assert 0.0 <= on_test["mIoU"] <= 1.0
    assert json.loads((tmp_path / "eval_test" / "metrics.json").read_text())["split"] == "test"


def test_eval_of_a_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    cfg = compose_config("eval", [f"ckpt_path={tmp_path / 'none.ckpt'}"], tmp_path)
    with pytest.raises(eval_entry.CheckpointError, match="no file at"):
        eval_entry.run(cfg)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)  # a Lightning checkpoint from elsewhere
    cfg = compose_config("eval", [f"ckpt_path={foreign}"], tmp_path)
    with pytest.raises(eval_entry.CheckpointError, match="no stored run config"):
        eval_entry.run(cfg)


def _cli(script: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )


def test_command_line_fast_dev_run_prints_metrics_and_output_folder(tmp_path):
    proc = _cli("train.py", *SMALL, "trainer.fast_dev_run=true", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "val mIoU" in proc.stdout and "mVC_8" in proc.stdout
    assert f"output folder: {tmp_path}" in proc.stdout


def test_command_line_misspelled_option_gives_hydras_error(tmp_path):
    proc = _cli("train.py", "model=per_fram", f"paths.log_dir={tmp_path}")
    assert proc.returncode != 0
    assert "Could not find 'model/per_fram'" in proc.stderr and "per_frame" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_command_line_eval_missing_checkpoint_is_one_line(tmp_path):
    proc = _cli("eval.py", f"ckpt_path={tmp_path / 'x.ckpt'}", f"paths.log_dir={tmp_path}")
    assert proc.returncode != 0
    assert "error: ckpt_path: no file at" in proc.stderr and "Traceback" not in proc.stderr


def test_command_line_bad_data_folder_is_one_line_naming_it(tmp_path):
    proc = _cli("train.py", "data=camvid", f"data.root={tmp_path / 'nowhere'}", f"paths.log_dir={tmp_path}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"error: CamVid at {tmp_path / 'nowhere'}: missing folder(s)" in proc.stderr


def test_a_data_error_from_a_loader_worker_keeps_only_its_message():
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nssltm.data.image_files.DataError: /d/a.jpg: unreadable or truncated image (x)'
    )
    assert user_error_message(wrapped) == "error: /d/a.jpg: unreadable or truncated image (x)"


@pytest.mark.parametrize("backbone", ["swin_s", "resnet101"])
def test_ssltm_fast_dev_run_on_the_paper_backbones(backbone, train_cfg_factory):
    cfg = train_cfg_factory("model=ssltm", f"backbone={backbone}", "trainer.fast_dev_run=true")
    result, objects = train_entry.run(cfg)
    assert objects["trainer"].global_step == 1 and 0.0 <= result["mIoU"] <= 1.0


def test_wandb_logger_runs_offline_inside_the_output_folder(train_cfg_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the suite must default to offline by itself
    cfg = train_cfg_factory("logger=wandb", "model=per_frame", "callbacks=none")
    train_entry.run(cfg)
    assert os.environ["WANDB_MODE"] == "offline"
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs and any(runs[0].rglob("*.wandb"))
    # the next job of a multirun (same process) gets a run of its own, in its own folder
    train_entry.run(train_cfg_factory("logger=wandb", "model=per_frame", "callbacks=none", output_dir=tmp_path / "job1"))
    assert len(list((tmp_path / "job1" / "wandb").glob("offline-run-*"))) == 1


def test_constant_learning_rate_option_trains(train_cfg_factory):
    cfg = train_cfg_factory("scheduler=none", "model=per_frame", "trainer.fast_dev_run=true")
    _, objects = train_entry.run(cfg)
    assert not objects["trainer"].lr_scheduler_configs


def test_reported_metrics_are_the_final_weights_not_a_checkpoint_chosen_on_them(train_cfg_factory, tmp_path):
    """Validation after epochs 2 and 4 of 5 (steps 4 and 8 of 10): the run validates its final
    weights once more, reports that (not the best of the validations it chose checkpoints by),
    and last.ckpt holds those final weights (step 10)."""
    cfg = train_cfg_factory("trainer.max_epochs=5", "trainer.check_val_every_n_epoch=2")
    result, objects = train_entry.run(cfg)
    method, trainer = objects["method"], objects["trainer"]
    assert trainer.global_step == 10 and method.last_eval_step == 10
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 10
    for key, value in method.state_dict().items():
        assert torch.equal(last["state_dict"][key], value), key
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mIoU"] == pytest.approx(result["mIoU"]) and metrics["checkpoint"].endswith("last.ckpt")
    again, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={metrics['checkpoint']}"], tmp_path / "eval"))
    for key in ("mIoU", "mVC8", "mVC16"):
        assert again[key] == pytest.approx(result[key], abs=1e-9), key


def test_validation_frequency_does_not_change_the_training_trajectory(train_cfg_factory, tmp_path):
    """Loaders get their own generators: creating a validation loader draws nothing from the global
    RNG, which the strong augmentation of Mean Teacher uses. Validating after every epoch or only
    at the end must give the same final weights (one thread: bit-reproducible)."""
    weights = []
    for every in (1, 3):
        cfg = train_cfg_factory("method=mean_teacher", "trainer.max_epochs=3",
                                f"trainer.check_val_every_n_epoch={every}", output_dir=tmp_path / str(every))
        _, objects = train_entry.run(cfg)
        weights.append({k: v.clone() for k, v in objects["method"].model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_a_data_set_of_two_frame_videos_trains_with_a_warning_naming_them(train_cfg_factory):
    """Clips of 4 frames from videos of 2: the sampler repeats the first frame, as at any video's
    start; the data check warns and names the videos instead of stopping."""
    cfg = train_cfg_factory("data.source.num_frames=2", "data.clip.num_frames=4", "trainer.fast_dev_run=true")
    with pytest.warns(UserWarning, match=r"shorter than a clip of data.clip .*needs 4 frames.*has 2"):
        result, _ = train_entry.run(cfg)
    assert 0.0 <= result["mIoU"] <= 1.0


def test_eval_takes_the_data_keys_it_documents_without_plus_plus(tmp_path):
    """`src/eval.py ckpt_path=... data.root=/elsewhere data.num_workers=0` (docs/data.md): null
    defaults in conf/eval.yaml change nothing, a given root also moves the stored source."""
    stored = {"_target_": "ssltm.data.datamodule.VideoDataModule", "root": "/trained/camvid", "num_workers": 1,
              "split": "val", "source": {"_target_": "ssltm.data.camvid.CamVidSource", "root": "/trained/camvid"}}
    given = compose_config("eval", ["ckpt_path=x.ckpt", "data.root=/elsewhere/camvid", "data.num_workers=0"], tmp_path).data
    changed = eval_entry.changed_config(stored, given, "data")
    assert changed.root == changed.source.root == "/elsewhere/camvid"
    assert changed.num_workers == 0 and changed.split == "val"
    untouched = eval_entry.changed_config(stored, compose_config("eval", ["ckpt_path=x.ckpt"], tmp_path).data, "data")
    assert untouched.root == "/trained/camvid" and untouched.num_workers == 1
    synthetic = {**stored, "source": {"_target_": "ssltm.data.synthetic.SyntheticSource"}}
    with pytest.raises(ConfigError, match="data.root: the checkpoint's data .*SyntheticSource.* is not read from a folder"):
        eval_entry.changed_config(synthetic, given, "data")


def test_a_crop_larger_than_the_frames_is_named_in_a_warning(train_cfg_factory):
    cfg = train_cfg_factory("data.train_transform.crop_size=[64,96]", "trainer.fast_dev_run=true")  # frames 48x64
    with pytest.warns(UserWarning, match=r"crop_size=\[64, 96\] is larger than the frames \(48x64"):
        train_entry.run(cfg)


def test_a_run_that_ends_before_any_validation_still_saves_and_says_so(train_cfg_factory, tmp_path, capsys):
    cfg = train_cfg_factory("trainer.max_epochs=2", "trainer.check_val_every_n_epoch=5")  # no validation in training
    result, _ = train_entry.run(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert f"final checkpoint: {last}" in capsys.readouterr().out
    assert "mIoU" in result  # the final weights were evaluated once, at the end


def test_ssltm_on_a_dinov2_backbone_trains_a_step_at_a_size_that_is_not_a_multiple_of_14(train_cfg_factory):
    """backbone=dinov2_s (timm vit_small_patch14_dinov2, random weights): 48x64 frames (padded to
    56x70 inside the ViT) give the neck its stride-8 map; one training and one validation step."""
    cfg = train_cfg_factory("backbone=dinov2_s", "trainer.fast_dev_run=true")
    result, objects = train_entry.run(cfg)
    assert objects["method"].model.backbone.reductions == [14, 14, 14, 14]
    assert 0.0 <= result["mIoU"] <= 1.0


def test_command_line_a_constructor_error_wrapped_by_hydra_is_one_line(tmp_path):
    """Hydra wraps what a constructor raises in an InstantiationException: the entry point still
    prints the user error alone."""
    proc = _cli("train.py", *SMALL, "model=segmenter", "model.num_heads=6", f"paths.log_dir={tmp_path}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: model.channels (32) must be divisible by model.num_heads (6)"
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [proc.stderr.strip().splitlines()[-1]]


def test_a_run_without_any_logger_trains_and_drops_the_learning_rate_monitor(train_cfg_factory):
    """`logger=[]` (no CSV, no W&B): Lightning's LearningRateMonitor refuses a trainer without a
    logger, so the run leaves it out instead of stopping with Lightning's traceback."""
    cfg = train_cfg_factory("logger=[]", "model=per_frame", "+trainer.max_steps=1")
    _, objects = train_entry.run(cfg)
    trainer = objects["trainer"]
    assert trainer.global_step == 1 and not trainer.loggers
    assert not any(type(c).__name__ == "LearningRateMonitor" for c in trainer.callbacks)
