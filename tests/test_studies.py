"""The paper's studies: every study config composes and expands into its sweep, a real multirun keeps
its jobs apart, and scripts/aggregate.py turns a multirun folder (with a failed and a missing run)
into the right table, CSV and plot."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

import aggregate
from conftest import CONF, ROOT, compose_config

STUDIES = sorted(p.stem for p in (CONF / "experiment").glob("study_*.yaml"))


def test_the_seven_studies_of_the_issue_exist():
    assert STUDIES == ["study_backbones", "study_context", "study_gcc", "study_label_ratio",
                       "study_methods", "study_reference_distance", "study_stt"]


@pytest.mark.parametrize("study", STUDIES)
@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_study_composes_and_every_job_of_its_sweep_composes(study, scale, tmp_path):
    cfg = compose_config("train", [f"experiment={study}", f"study_scale={scale}"], tmp_path, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, f"{study} sweeps nothing"
    assert cfg.study.x in params or cfg.study.x == "method" or cfg.study.x in str(params)
    values = {key: str(value).split(",") for key, value in params.items()}
    combos = list(itertools.product(*values.values()))
    for combo in combos if scale == "cpu" else combos[:1]:  # the paper scale: its first job
        overrides = [f"{k}={v}" for k, v in zip(values, combo)]
        job = compose_config("train", [f"experiment={study}", f"study_scale={scale}", *overrides], tmp_path)
        OmegaConf.to_container(job, resolve=True)  # every interpolation resolves
        if scale == "paper":
            assert job.data.source._target_.endswith("VSPWSource") and job.trainer.accelerator == "gpu"


@pytest.mark.parametrize("study", ["study_stt", "study_context"])
def test_cfg_job_prints_the_study_config(study):
    proc = subprocess.run([sys.executable, "src/train.py", f"experiment={study}", "--cfg", "job"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["task_name"] == study and "study" in printed


def test_multirun_runs_each_job_in_its_own_folder_and_aggregates(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "src/train.py", "-m", "experiment=study_stt", "seed=1", "backbone=tiny",
         "model.channels=32", "data.source.train_videos=4", "data.source.val_videos=2",
         "data.source.num_frames=12", "data.num_workers=0", "trainer.fast_dev_run=true",
         "callbacks.rich_progress_bar=null", f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]  # seed=1 on the command line replaces the study's seeds
    assert all((sweep / j / "metrics.json").is_file() for j in jobs)
    written = aggregate.aggregate(sweep)
    assert written["ok"] == 2 and written["failed"] == 0 and written["png"].is_file()
    table = written["md"].read_text()
    assert "| true | 1 |" in table and "| false | 1 |" in table


# --- aggregate.py on a fake multirun ----------------------------------------------------------
def fake_job(root, num, overrides, miou=None, wall=60.0):
    folder = root / str(num)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if miou is not None:  # a finished run; a failed one has no metrics.json
        (folder / "metrics.json").write_text(json.dumps({"mIoU": miou, "mVC8": 0.9, "mVC16": 0.8}))
        (folder / "method_stats.json").write_text(json.dumps(
            {"wall_seconds": wall, "disk_bytes": {"total": 2_000_000}, "parameters": 1000}))


def fake_multirun(root):
    root.mkdir()
    (root / "multirun.yaml").write_text(yaml.safe_dump({
        "task_name": "study_gcc",
        "study": {"title": "GCC", "x": "model.gcc.k", "hue": "model.gcc.update", "kind": "line"},
        "hydra": {"sweeper": {"params": {"model.gcc.k": "1,2", "model.gcc.update": "mse"}},
                  "overrides": {"task": ["experiment=study_gcc", "seed=1,2"]}},
    }))
    fake_job(root, 0, ["model.gcc.k=1", "model.gcc.update=mse", "seed=1", "experiment=study_gcc"], 0.50, 60)
    fake_job(root, 1, ["model.gcc.k=1", "model.gcc.update=mse", "seed=2", "experiment=study_gcc"], 0.70, 120)
    fake_job(root, 2, ["model.gcc.k=2", "model.gcc.update=mse", "seed=1", "experiment=study_gcc"])  # failed
    # job 3 (k=2, seed=2) never ran: missing
    return root


def test_aggregate_averages_seeds_and_lists_failed_and_missing_runs(tmp_path):
    written = aggregate.aggregate(fake_multirun(tmp_path / "multirun"))
    assert (written["ok"], written["failed"]) == (2, 1)
    table = written["md"].read_text()
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("| model.gcc.k"))
    assert header.split(" | ")[:4] == ["| model.gcc.k", "model.gcc.update", "runs", "mIoU"]
    row = next(line for line in lines if line.startswith("| 1 |"))
    assert "| 1 | mse | 2 | 60.00 ± 14.14 |" in row and "| 1.5 ± 0.7 |" in row  # minutes
    assert row.endswith("| 2.0 ± 0.0 | 0.00 |")  # disk MB, parameters (1000) in millions
    assert not any(line.startswith("| 2 |") for line in lines)  # no finished run for k=2
    assert "Failed runs (1" in table and "`2`: model.gcc.k=2 model.gcc.update=mse seed=1" in table
    assert "Missing runs (1" in table and "- model.gcc.k=2 model.gcc.update=mse seed=2" in table
    rows = list(csv.DictReader(written["csv"].open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[0]["model.gcc.k"] == "1" and float(rows[1]["mIoU"]) == 0.7
    assert written["png"].is_file() and written["png"].stat().st_size > 1000


def test_aggregate_command_line(tmp_path, capsys):
    root = fake_multirun(tmp_path / "multirun")
    assert aggregate.main([str(root), f"out={tmp_path / 'out'}"]) == 0
    assert "2 runs, 1 failed" in capsys.readouterr().out
    assert (tmp_path / "out" / "results.md").is_file()
    assert aggregate.main([str(tmp_path / "nowhere")]) == 1
    assert "no multirun folder" in capsys.readouterr().err


def test_sweep_values_follow_hydras_syntax():
    assert aggregate.sweep_values("1,2,3") == ["1", "2", "3"]
    assert aggregate.sweep_values("range(1,4)") == ["1", "2", "3"]
    assert aggregate.sweep_values("choice(mse,ema)") == ["mse", "ema"]
    assert aggregate.sweep_values("[1,2],[3,4]") == ["[1,2]", "[3,4]"]
    assert aggregate.sweep_values("True,false") == ["true", "false"]


def test_optuna_hparams_search_runs_trials_and_reports_the_best(tmp_path):
    sweep = tmp_path / "optuna"
    proc = subprocess.run(
        [sys.executable, "src/train.py", "-m", "hparams_search=mean_teacher_optuna", "experiment=synthetic_mean_teacher",
         "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2", "backbone=tiny",
         "model.channels=32", "data.source.train_videos=4", "data.source.val_videos=2", "data.source.num_frames=12",
         "data.num_workers=0", "trainer.fast_dev_run=true", "callbacks.rich_progress_bar=null",
         f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.lr", "method.ema_decay", "method.confidence_threshold"}
    assert 0.0 <= best["best_value"] <= 1.0
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    table = aggregate.aggregate(sweep)["md"].read_text()  # every trial, none "missing"
    assert "optimizer.lr" in table and "Missing" not in table
