"""Reliability: exact resume after SIGTERM / SIGINT, atomic checkpoints, the non-finite loss guard
and the config checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import train as train_entry
from ssltm.errors import CheckpointError, ConfigError, NonFiniteLossError
from ssltm.runs.atomic_checkpoint_io import TEMP_PREFIX
from ssltm.runs.resume import TrainingInterrupted

#: a Mean Teacher run with the GCC (mse), 3 steps an epoch, 2 epochs; batches from a worker process
RUN_BASE = ["data.steps_per_epoch=3", "trainer.max_epochs=2", "data.num_workers=1", "callbacks.rich_progress_bar=null"]
RUN = ["method=mean_teacher", *RUN_BASE]


def _recorder(path: Path) -> list[str]:
    return ["+callbacks.loss_recorder._target_=run_helpers.LossRecorder", f"+callbacks.loss_recorder.file={path}"]


def _losses(path: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize(("signal_name", "method"), [("SIGTERM", "mean_teacher"), ("SIGINT", "mean_teacher"),
                                                      ("SIGTERM", "unimatch"), ("SIGTERM", "unimatch_v2")])
def test_interrupted_run_resumes_exactly(train_cfg_factory, tmp_path, signal_name, method):
    RUN = [*RUN_BASE, f"method={method}"]  # noqa: N806
    whole = tmp_path / "whole"
    train_entry.run(train_cfg_factory(*RUN, *_recorder(tmp_path / "whole.jsonl"), output_dir=whole))

    # stopped by a signal in the middle of the second epoch (step 4 of 0..5)
    first = tmp_path / "first"
    stop = [*RUN, *_recorder(tmp_path / "parts.jsonl"), "+callbacks.kill._target_=run_helpers.SignalAtStep",
            "+callbacks.kill.step=4", f"+callbacks.kill.signal_name={signal_name}"]
    with pytest.raises(TrainingInterrupted) as stopped:
        train_entry.run(train_cfg_factory(*stop, output_dir=first))
    checkpoint = Path(stopped.value.checkpoint)
    assert checkpoint == first / "checkpoints" / "last.ckpt" and checkpoint.is_file()
    assert stopped.value.step == 5  # the step under way when the signal came was finished

    # resumed in its own folder with ckpt_path=last
    resume = [*RUN, *_recorder(tmp_path / "parts.jsonl"), "ckpt_path=last"]
    train_entry.run(train_cfg_factory(*resume, output_dir=first))

    assert _losses(tmp_path / "parts.jsonl") == _losses(tmp_path / "whole.jsonl")  # the same 6 losses
    # one continuous log: the validation of epoch 0 (before the interruption) is still there
    from plot_run import read_log

    assert [step for step, _ in read_log(first / "csv" / "metrics.csv")["val/mIoU"]] == [2, 5]
    expected, got = _weights(whole / "checkpoints" / "last.ckpt"), _weights(first / "checkpoints" / "last.ckpt")
    assert expected.keys() == got.keys()
    assert any("gcc.prototypes" in k for k in got)
    assert any(k.startswith("teacher.") for k in got) == (method in ("mean_teacher", "unimatch_v2"))
    for key in expected:
        assert torch.equal(expected[key], got[key]), key  # student, teacher, EMA step, GCC memory


def test_auto_resumes_when_there_is_a_checkpoint_and_starts_fresh_otherwise(tmp_path):
    from ssltm.runs.resume import resolve_checkpoint

    assert resolve_checkpoint("auto", tmp_path) is None
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.touch()
    assert resolve_checkpoint("auto", tmp_path) == str(last) == resolve_checkpoint("last", tmp_path)
    requeued = tmp_path / "hpc_ckpt_1.ckpt"  # written later by Lightning's SLURM auto-requeue
    requeued.touch()
    os.utime(last, (1, 1))
    assert resolve_checkpoint("auto", tmp_path) == str(requeued)


def test_slurm_launcher_config_extends_the_submitit_plugin(tmp_path):
    from conftest import compose_config

    cfg = compose_config("train", ["hydra/launcher=slurm"], tmp_path, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.max_num_timeout >= 1 and launcher.timeout_min == 1440 and launcher.signal_delay_s > 0


def test_a_fresh_run_into_a_folder_holding_a_run_stops_unless_told_to_overwrite(train_cfg_factory, tmp_path):
    train_entry.run(train_cfg_factory("data.steps_per_epoch=3", output_dir=tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    with pytest.raises(ConfigError, match=rf"{tmp_path} already holds a run .*ckpt_path=last.*overwrite=true"):
        train_entry.run(train_cfg_factory("data.steps_per_epoch=1", output_dir=tmp_path))
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == before == 3  # kept
    train_entry.run(train_cfg_factory("data.steps_per_epoch=1", "overwrite=true", output_dir=tmp_path))
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 1


def test_resume_without_a_checkpoint_is_a_clear_error(train_cfg_factory, tmp_path):
    with pytest.raises(ConfigError, match=r"ckpt_path=last: there is no .*last\.ckpt.*hydra\.run\.dir"):
        train_entry.run(train_cfg_factory("ckpt_path=last", output_dir=tmp_path / "new"))
    with pytest.raises(ConfigError, match="no checkpoint file at /nowhere.ckpt"):
        train_entry.run(train_cfg_factory("ckpt_path=/nowhere.ckpt"))


def test_sigterm_exits_cleanly_from_the_command_line(tmp_path):
    """`python src/train.py` stopped by SIGTERM: exit code 143, one message, a loadable checkpoint."""
    from conftest import ROOT, SMALL

    args = [sys.executable, str(ROOT / "src" / "train.py"), *SMALL, *RUN[:-1], "data.num_workers=0",
            "data.steps_per_epoch=50", "trainer.max_epochs=100", f"hydra.run.dir='{tmp_path / 'a run'}'",
            "callbacks.rich_progress_bar=null", "+callbacks.kill._target_=run_helpers.SignalAtStep",
            "+callbacks.kill.step=3"]
    env = {"PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "offline", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 143, done.stderr[-2000:]
    assert "training interrupted by SIGTERM after step 4" in done.stderr
    assert "Traceback" not in done.stderr
    checkpoint = tmp_path / "a run" / "checkpoints" / "last.ckpt"
    assert f"ckpt_path='{checkpoint}'" in done.stderr  # quoted: the folder has a space
    assert torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"] == 4


KILLED_WHILE_SAVING = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from ssltm.runs.atomic_checkpoint_io import AtomicCheckpointIO

    class Slow:  # pickled in the middle of the checkpoint: tells the test, then waits to be killed
        def __reduce__(self):
            Path(sys.argv[2]).touch()
            time.sleep(60)
            return (int, (0,))

    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "step": 1}, sys.argv[1])
    io.save_checkpoint({"state_dict": {"w": torch.zeros(1000, 1000)}, "slow": Slow(), "step": 2}, sys.argv[1])
""")


def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path):
    from conftest import ROOT

    path, started = tmp_path / "last.ckpt", tmp_path / "saving"
    script = tmp_path / "save.py"
    script.write_text(KILLED_WHILE_SAVING)
    child = subprocess.Popen([sys.executable, str(script), str(path), str(started)],
                             env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    deadline = time.time() + 120
    while not started.exists():
        assert child.poll() is None and time.time() < deadline, "the saving process ended early"
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]  # the broken one
    checkpoint = torch.load(path, weights_only=True)  # the previous checkpoint, whole
    assert checkpoint["step"] == 1 and torch.equal(checkpoint["state_dict"]["w"], torch.ones(3))


def test_a_nan_loss_skips_its_step_and_the_weights_stay(train_cfg_factory, tmp_path):
    losses = tmp_path / "losses.jsonl"
    cfg = train_cfg_factory("method=mean_teacher", "data.steps_per_epoch=4", "trainer.log_every_n_steps=1", *_recorder(losses),
                            "+callbacks.nan._target_=run_helpers.NanInputs", "+callbacks.nan.start=1",
                            "+callbacks.nan.stop=3", "+callbacks.state._target_=run_helpers.SaveFinalState",
                            f"+callbacks.state.folder={tmp_path / 'state'}")
    _, objects = train_entry.run(cfg)
    method = objects["method"]
    recorded = _losses(losses)
    assert recorded[1] is None and recorded[2] is None  # steps 1 and 2 skipped
    assert all(torch.isfinite(p).all() for p in method.parameters())
    assert all(torch.isfinite(b).all() for b in method.buffers() if b.is_floating_point())  # BatchNorm statistics too
    assert int(method.ema_step) == 2  # the teacher moved only on the 2 steps that trained
    metrics = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/nonfinite_skipped" in metrics


def test_nan_losses_in_a_row_stop_the_run_with_a_message(train_cfg_factory, tmp_path):
    cfg = train_cfg_factory("data.steps_per_epoch=10", "method.max_nonfinite_steps=3",
                            "+callbacks.nan._target_=run_helpers.NanInputs", "+callbacks.nan.start=2")
    with pytest.raises(NonFiniteLossError, match=r"not finite in 3 steps in a row \(steps 2 to 4; "
                                                 r"method.max_nonfinite_steps=3\)"):
        train_entry.run(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.stt.window=[4,0,8]", r"model.stt.window=\[4, 0, 8\] must be 3 window sizes"),
        ("model.stt.window=[4,8]", r"model.stt.window=\[4, 8\] must be 3 window sizes"),
        ("model.gcc.k=0", "model.gcc.k=0 must be an integer >= 1"),
        ("data.clip.num_frames=6 model.stt.window=[4,8,8]", r"t=4 < data.clip.num_frames=6: STT has no shifted"),
        ("method=mean_teacher method.confidence_threshold=1.5", r"method.confidence_threshold=1.5 must be in \[0, 1\]"),
        ("method=mean_teacher method.ema_decay=1.0", r"method.ema_decay=1.0 must be in \[0, 1\)"),
        ("data.clip.num_frames=0", r"data.clip.num_frames=0 must be an integer >= 1 \(T"),
        ("data.clip.eval_distance=-1", "data.clip.eval_distance=-1 must be an integer >= 0"),
        ("data.clip.min_distance=5 data.clip.max_distance=2", "min_distance=5 must not exceed data.clip.max_distance=2"),
        ("data.train_transform.crop_size=[16,64]", r"crop_size=\[16, 64\] is smaller than the backbone's output stride 32"),
        ("model.num_classes=9", "model.num_classes=9 but the data set has 7 classes"),
        ("method.max_nonfinite_steps=0", "method.max_nonfinite_steps=0 must be an integer >= 1"),
        ("optimizer.lr=-0.1", r"optimizer.lr=-0.1 must be a number > 0"),
        ("data.labels=one_per_vid", r"data.labels='one_per_vid' must be one of one_per_video, all, every_k"),
        ("data.validate=ful", r"data.validate='ful' must be one of full, layout, off"),
        ("model.gcc.update=sgd", r"model.gcc.update='sgd' must be one of mse, ema"),
        ("inference=slide inference.mode=slid", r"inference.mode='slid' must be one of whole, slide"),
    ],
)
def test_each_bad_config_value_gets_its_message(train_cfg_factory, override, message):
    with pytest.raises(ConfigError, match=message):
        train_entry.run(train_cfg_factory(*override.split()))


def test_several_bad_values_are_reported_together(train_cfg_factory):
    with pytest.raises(ConfigError) as error:
        train_entry.run(train_cfg_factory("model.gcc.k=0", "data.batch_size=0"))
    assert "model.gcc.k=0" in str(error.value) and "data.batch_size=0" in str(error.value)


def test_a_constructor_applies_the_same_rule_as_the_config_check():
    """One rule per option (utils/options.RULES): built directly, without a config, a module
    refuses a bad value with the config check's own words."""
    from ssltm.data.clips import ClipSampler
    from ssltm.models.gcc import GlobalCategoryContext

    with pytest.raises(ConfigError, match=r"^model.gcc.k=0 must be an integer >= 1"):
        GlobalCategoryContext(num_classes=3, channels=8, k=0)
    with pytest.raises(ConfigError, match=r"^data.clip.min_distance=5 must not exceed data.clip.max_distance=2"):
        ClipSampler(min_distance=5, max_distance=2)


def test_a_failed_checkpoint_write_keeps_the_previous_file_and_says_so(tmp_path, monkeypatch):
    """A full disk while a checkpoint is written: the earlier checkpoint stays loadable, no
    temporary file is left, and the error says what happened (a user error: one line)."""
    import errno

    import ssltm.runs.atomic_checkpoint_io as atomic
    from ssltm.errors import USER_ERRORS, CheckpointWriteError

    path = tmp_path / "last.ckpt"
    atomic.atomic_torch_save({"state_dict": {"w": torch.ones(3)}, "step": 1}, path)

    def full_disk(obj, file):
        file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match=rf"could not write the checkpoint {path}: No space left on device; "
                                                   "the previous one is kept") as failed:
        atomic.AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "step": 2}, path)
    assert isinstance(failed.value, USER_ERRORS)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_checkpoints_get_the_usual_permissions_and_leftovers_of_a_killed_save_go(tmp_path):
    from ssltm.runs.atomic_checkpoint_io import atomic_torch_save

    path = tmp_path / "last.ckpt"
    leftover = tmp_path / f"{TEMP_PREFIX}last.ckpt.abc123"  # from a save that was killed
    leftover.write_bytes(b"half a checkpoint")
    umask = os.umask(0o022)
    try:
        atomic_torch_save({"step": 1}, path)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # as any other output (mkstemp alone gives 0600)
    assert not leftover.exists()


def test_resuming_from_a_checkpoint_of_another_network_is_one_clear_error(train_cfg_factory, tmp_path):
    train_entry.run(train_cfg_factory("data.steps_per_epoch=1", output_dir=tmp_path / "a"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match=rf"ckpt_path: {ckpt} holds SSLTM \(test_resnet, C=32, 7 classes\) "
                                              r"trained by SupervisedMethod, but this run builds SSLTM \(test_resnet, "
                                              r"C=16, 7 classes\) trained by SupervisedMethod: \S+ is \(16, .*\) there, "
                                              r"\(8, .*\) here"):
        train_entry.run(train_cfg_factory("model.channels=16", f"ckpt_path={ckpt}", output_dir=tmp_path / "b"))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"ckpt_path: cannot read {truncated} as a checkpoint"):
        train_entry.run(train_cfg_factory(f"ckpt_path={truncated}", output_dir=tmp_path / "c"))


def test_an_output_folder_that_takes_no_files_is_refused_before_training(train_cfg_factory, tmp_path, monkeypatch):
    import tempfile

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refused)  # (tests may run as root)
    with pytest.raises(ConfigError, match=rf"paths.output_dir: cannot write into {tmp_path}: Permission denied"):
        train_entry.run(train_cfg_factory(output_dir=tmp_path))
    assert not (tmp_path / "csv").exists()  # nothing trained


def test_a_folder_whose_run_lacks_last_ckpt_still_holds_a_run(train_cfg_factory, tmp_path):
    """A run with no last.ckpt (callbacks=none, or its checkpoints deleted) still owns its log."""
    train_entry.run(train_cfg_factory("data.steps_per_epoch=2", output_dir=tmp_path))
    (tmp_path / "checkpoints" / "last.ckpt").unlink()
    for extra in (tmp_path / "checkpoints").glob("*.ckpt"):
        extra.unlink()
    log = (tmp_path / "csv" / "metrics.csv").read_text()
    with pytest.raises(ConfigError, match=rf"{tmp_path} already holds a run \({tmp_path}/\S+\); train into another"):
        train_entry.run(train_cfg_factory("data.steps_per_epoch=1", output_dir=tmp_path))
    assert (tmp_path / "csv" / "metrics.csv").read_text() == log  # nothing appended


def test_overwrite_removes_only_what_the_suite_wrote(train_cfg_factory, tmp_path):
    train_entry.run(train_cfg_factory("data.steps_per_epoch=2", output_dir=tmp_path))
    mine = [tmp_path / "csv" / "my_notes.csv", tmp_path / "panels" / "figure_for_paper.png", tmp_path / "notes.md"]
    for path in mine:
        path.write_text("keep me")
    train_entry.run(train_cfg_factory("data.steps_per_epoch=1", "overwrite=true", output_dir=tmp_path))
    assert all(path.read_text() == "keep me" for path in mine)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1


def test_a_second_training_into_a_running_ones_folder_refuses_naming_it(tmp_path):
    """Two trainings started into one folder at once: one runs, the other stops in one line."""
    from conftest import ROOT, SMALL

    args = [sys.executable, str(ROOT / "src" / "train.py"), *SMALL, "data.num_workers=0", "data.steps_per_epoch=100",
            "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}", "callbacks.rich_progress_bar=null"]
    env = {"PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "offline", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    refused = next(err for code, err in results if code != 0)
    assert "Traceback" not in refused and len(refused.strip().splitlines()) == 1, refused
    other = next(p.pid for p, (code, _) in zip(procs, results) if code == 0)
    assert f"{tmp_path} is in use by another training (process {other})" in refused


def test_the_run_lock_is_exclusive_and_released(tmp_path):
    from ssltm.runs.run_folder import RunLock

    with RunLock(tmp_path):
        with pytest.raises(ConfigError, match=rf"in use by another training \(process {os.getpid()}\)"):
            RunLock(tmp_path).__enter__()
    with RunLock(tmp_path):  # free again
        pass


@pytest.mark.parametrize(("env", "rank"), [({}, 0), ({"LOCAL_RANK": "1"}, 1), ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, 1),
                                           ({"SLURM_PROCID": "2"}, 2), ({"RANK": "0", "LOCAL_RANK": "0"}, 0)])
def test_only_the_first_process_of_a_run_takes_the_folder_lock(monkeypatch, env, rank):
    from ssltm.runs.run_folder import process_rank

    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert process_rank() == rank
