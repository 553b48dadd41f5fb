"""The paper's studies: every study config composes and expands into its sweep, a real multirun keeps
its jobs apart, and scripts/aggregate.py turns a multirun folder (with a failed and a missing run)
into the right table, CSV and plot."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import shutil
import subprocess
import sys

import aggregate
import pytest
import study_stats
import yaml
from conftest import CONF, ROOT, compose_config
from omegaconf import OmegaConf

STUDIES = sorted(p.stem for p in (CONF / "experiment").glob("study_*.yaml"))
#: the studies of the synthetic set, whose scale is `study_scale` (bench | paper); study_camvid
#: has its own data and scale (CamVid at 180x240)
SCALED = [s for s in STUDIES if s != "study_camvid"]
#: the paper's ablations on the real-video bench: experiment=camvid_bench with one thing swept
CAMVID_STUDIES = sorted(p.stem for p in (CONF / "experiment").glob("camvid_study_*.yaml"))


def test_the_studies_exist():
    assert STUDIES == ["study_backbones", "study_camvid", "study_context", "study_gcc", "study_label_ratio",
                       "study_methods", "study_reference_distance", "study_stt", "study_temporal"]


def test_the_real_video_studies_exist():
    assert CAMVID_STUDIES == ["camvid_study_context", "camvid_study_gcc", "camvid_study_methods",
                              "camvid_study_reference_distance", "camvid_study_stt"]


@pytest.mark.parametrize("study", STUDIES + CAMVID_STUDIES)
def test_every_study_sweeps_seeds_and_its_claims_name_swept_values(study, tmp_path):
    """At least 3 seeds a cell (5 for the headline studies), and every claim compares values
    that the sweep runs, so no verdict can silently read "no runs"."""
    cfg = compose_config("train", [f"experiment={study}"], tmp_path, return_hydra_config=True)
    params = {k: aggregate.sweep_values(str(v)) for k, v in OmegaConf.to_container(cfg.hydra.sweeper.params).items()}
    assert len(params["seed"]) >= (5 if study in ("study_methods", "study_temporal", "study_stt", "camvid_study_methods") else 3)
    for claim in OmegaConf.to_container(cfg.study).get("expect", []):
        key = claim.get("key", cfg.study.x)
        for value in [claim.get("better"), claim.get("than"), claim.get("best")]:
            if value is not None:
                assert str(value) in params[key], (claim["claim"], key, value)
        for where_key, where_value in (claim.get("where") or {}).items():
            assert aggregate.normalise(str(where_value)) in params[where_key], (claim["claim"], where_key)


@pytest.mark.parametrize("study", SCALED)
@pytest.mark.parametrize("scale", ["bench", "paper"])
def test_study_composes_and_every_job_of_its_sweep_composes(study, scale, tmp_path):
    cfg = compose_config("train", [f"experiment={study}", f"study_scale={scale}"], tmp_path, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, f"{study} sweeps nothing"
    assert cfg.study.x in params, f"{study}: its x axis {cfg.study.x} is not swept"
    values = {key: str(value).split(",") for key, value in params.items()}
    combos = list(itertools.product(*values.values()))
    for combo in combos if scale == "bench" else combos[:1]:  # the paper scale: its first job
        overrides = [f"{k}={v}" for k, v in zip(values, combo)]
        job = compose_config("train", [f"experiment={study}", f"study_scale={scale}", *overrides], tmp_path)
        OmegaConf.to_container(job, resolve=True)  # every interpolation resolves
        if scale == "paper":
            assert job.data.source._target_.endswith("VSPWSource") and job.trainer.accelerator == "gpu"


def test_the_camvid_study_composes_every_job_at_its_reduced_resolution(tmp_path):
    cfg = compose_config("train", ["experiment=study_camvid"], tmp_path, return_hydra_config=True)
    values = {k: str(v).split(",") for k, v in OmegaConf.to_container(cfg.hydra.sweeper.params).items()}
    for combo in itertools.product(*values.values()):
        job = compose_config("train", ["experiment=study_camvid", *(f"{k}={v}" for k, v in zip(values, combo))], tmp_path)
        OmegaConf.to_container(job, resolve=True)
        assert job.data.source._target_.endswith("CamVidSource") and job.data.labels == "one_per_video"
        assert list(job.data.train_transform.resize) == list(job.data.eval_transform.resize) == [180, 240]


@pytest.mark.parametrize("study", CAMVID_STUDIES)
def test_a_real_video_study_is_the_bench_with_one_thing_swept(study, tmp_path):
    """Every job of its sweep is experiment=camvid_bench (CamVid at 96x128, one label in 30 frames,
    an ImageNet encoder) but for the swept keys: what lets experiments/camvid_ablations pair its runs
    with the bench's own by seed. Its study node stands in the file (aggregate.py reads it unmerged)."""
    cfg = compose_config("train", [f"experiment={study}"], tmp_path, return_hydra_config=True)
    values = {k: aggregate.sweep_values(str(v)) for k, v in OmegaConf.to_container(cfg.hydra.sweeper.params).items()}
    assert aggregate.read_study(study)["x"] in values
    values["seed"] = values["seed"][:1]  # jobs that differ only in their seed compose alike
    for combo in itertools.product(*values.values()):
        overrides = dict(zip(values, combo))
        job = OmegaConf.to_container(compose_config(
            "train", [f"experiment={study}", *(f"{k}={v}" for k, v in overrides.items())], tmp_path), resolve=True)
        assert job["task_name"] == study
        bench = OmegaConf.to_container(compose_config(
            "train", ["experiment=camvid_bench", f"seed={overrides['seed']}"], tmp_path), resolve=True)
        for path in ("data.source", "data.train_transform", "data.labels", "backbone", "model.channels",
                     "trainer.max_epochs", "data.batch_size", "optimizer"):
            assert OmegaConf.select(OmegaConf.create(job), path) == OmegaConf.select(OmegaConf.create(bench), path), (study, path)
        swept = {k.split(".")[0] for k in overrides if k != "seed"}
        for group in ("model", "method", "data"):
            if group not in swept:
                assert job[group] == bench[group], (study, group)


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
    row = next(csv.DictReader(written["csv"].open()))  # per-class IoU of each run, from metrics.json
    per_class = json.loads((sweep / "0" / "metrics.json").read_text())["per_class_iou"]
    assert {f"iou/{name}" for name in per_class} <= set(row)
    expected, got = per_class["background"], float(row["iou/background"])  # null in metrics.json -> nan
    assert math.isnan(got) if expected is None else got == pytest.approx(expected)


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
    # mean ± 95% t-interval: 60 ± t(0.975, 1) * 14.14 / sqrt(2) = 60 ± 12.706 * 10
    assert "| 1 | mse | 2 | 60.00 ± 127.06 |" in row and "| 1.5 ± 6.4 |" in row  # minutes
    # sd over the seeds 14.14, 95% chi-square interval with 1 degree of freedom: sqrt(200 / chi2)
    assert "| 60.00 ± 127.06 | 14.14 (6.31-451.28) |" in row
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


def test_t_interval_is_the_textbook_one():
    # 5 values, mean 3, sd sqrt(2.5); t(0.975, 4) = 2.7764
    mean, half, n = study_stats.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (mean, n) == (3.0, 5) and half == pytest.approx(2.7764 * (2.5 ** 0.5) / 5 ** 0.5, abs=1e-3)
    assert math.isnan(study_stats.t_interval([1.0])[1])


def test_sd_interval_is_the_textbook_chi_square_one():
    # 5 values, sd sqrt(2.5), sum of squares 10; chi2(0.975, 4) = 11.143, chi2(0.025, 4) = 0.4844
    sd, low, high = study_stats.sd_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert sd == pytest.approx(2.5 ** 0.5)
    assert low == pytest.approx((10 / 11.143) ** 0.5, abs=1e-3)
    assert high == pytest.approx((10 / 0.4844) ** 0.5, abs=1e-3)
    assert all(math.isnan(v) for v in study_stats.sd_interval([1.0, math.nan]))


def runs(table: dict[tuple[str, str], float], key: str = "x") -> list:
    """{(value of key, seed): metric in [0, 1]} -> study_stats.Run list."""
    return [study_stats.Run({key: v, "seed": s}, {"mIoU": m}) for (v, s), m in table.items()]


@pytest.mark.parametrize(("shift", "verdict"), [(0.05, "agrees"), (-0.05, "opposite"), (0.001, "not resolved")])
def test_paired_claim_verdicts(shift, verdict):
    # b varies a lot across seeds, a = b + shift + a little noise: pairing by seed resolves shift
    base = {"1": 0.30, "2": 0.50, "3": 0.40, "4": 0.60, "5": 0.35}
    noise = {"1": 0.004, "2": -0.003, "3": 0.002, "4": -0.004, "5": 0.001}
    table = {("b", s): m for s, m in base.items()} | {("a", s): m + shift + noise[s] for s, m in base.items()}
    (v,) = study_stats.judge({"claim": "a above b", "better": "a", "than": "b"}, runs(table), "x")
    assert v.paired and v.seeds == 5 and v.verdict == verdict
    assert v.mean == pytest.approx(100 * shift, abs=0.5)
    if verdict == "not resolved":
        assert "could resolve" in v.verdict_text()


def test_claim_with_a_margin_needs_the_mean_to_clear_it():
    table = {("a", str(s)): 0.50 + 0.001 * s for s in range(5)} | {("b", str(s)): 0.47 for s in range(5)}
    (v,) = study_stats.judge({"claim": "c", "better": "a", "than": "b", "by_at_least": 5.0}, runs(table), "x")
    assert v.mean == pytest.approx(3.2) and v.verdict == "not resolved"
    assert v.verdict_text() == "not resolved (above 0, but below the +5 asked)"
    (v,) = study_stats.judge({"claim": "c", "better": "a", "than": "b", "by_at_least": 3.0}, runs(table), "x")
    assert v.verdict == "agrees"


def test_best_claim_needs_every_rival_beaten_and_is_opposite_when_one_wins():
    noise = [0.0, 0.002, -0.002, 0.001]
    table = {(k, str(s)): m + noise[s] for s in range(4) for k, m in (("1", 0.40), ("3", 0.45), ("5", 0.43))}
    verdicts = study_stats.judge({"claim": "K=3 best", "best": "3"}, runs(table), "x")
    assert [v.comparison for v in verdicts] == ["3 - 1", "3 - 5"]
    assert study_stats.overall(verdicts) == "agrees"
    verdicts = study_stats.judge({"claim": "K=1 best", "best": "1"}, runs(table), "x")
    assert study_stats.overall(verdicts) == "opposite"


def test_increasing_claim_reads_the_per_seed_slope():
    table = {(str(d), str(s)): 0.30 + 0.002 * d + 0.001 * s for d in (1, 10, 30) for s in range(3)}
    (v,) = study_stats.judge({"claim": "rises", "increasing": True}, runs(table), "x")
    assert v.mean == pytest.approx(0.2) and v.verdict == "agrees"
    (v,) = study_stats.judge({"claim": "falls", "increasing": False}, runs(table), "x")
    assert v.verdict == "opposite"


def test_minus_metric_claim_compares_the_gain_on_two_subsets():
    # a beats b by 4 points on noisy frames and by 1 on clean ones, seed by seed: the gain is 3 larger
    rows = [study_stats.Run({"x": x, "seed": str(s)}, {"noisy/mIoU": n + 0.001 * s, "clean/mIoU": c})
            for s in range(4) for x, n, c in [("a", 0.54, 0.61), ("b", 0.50, 0.60)]]
    claim = {"claim": "gain larger on noisy", "metric": "noisy/mIoU", "minus_metric": "clean/mIoU",
             "better": "a", "than": "b"}
    (v,) = study_stats.judge(claim, rows, "x")
    assert v.metric == "noisy/mIoU minus clean/mIoU" and v.mean == pytest.approx(3.0) and v.verdict == "agrees"
    (v,) = study_stats.judge({**claim, "better": "b", "than": "a"}, rows, "x")
    assert v.verdict == "opposite"


def test_unpaired_runs_fall_back_to_welch():
    table = {("a", "1"): 0.50, ("a", "2"): 0.52, ("b", "3"): 0.40, ("b", "4"): 0.41}
    (v,) = study_stats.judge({"claim": "c", "better": "a", "than": "b"}, runs(table), "x")
    assert not v.paired and v.mean == pytest.approx(10.5) and v.half_width > 0


def test_aggregate_writes_a_verdict_per_claim(tmp_path):
    root = tmp_path / "multirun"
    root.mkdir()
    (root / "multirun.yaml").write_text(yaml.safe_dump({
        "study": {"title": "labels", "x": "data.labels",
                  "expect": [{"claim": "labels matter", "paper": "more is better", "metric": "mIoU",
                              "better": "all", "than": "one_per_video", "by_at_least": 5.0}]},
        "hydra": {"sweeper": {"params": {"data.labels": "all,one_per_video", "seed": "1,2,3"}}},
    }))
    for i, (labels, seed, miou) in enumerate([("all", 1, 0.45), ("all", 2, 0.47), ("all", 3, 0.46),
                                               ("one_per_video", 1, 0.30), ("one_per_video", 2, 0.31),
                                               ("one_per_video", 3, 0.30)]):
        fake_job(root, i, [f"data.labels={labels}", f"seed={seed}"], miou)
    written = aggregate.aggregate(root)
    (verdict,) = written["verdicts"]
    assert verdict.verdict == "agrees" and verdict.seeds == 3 and verdict.mean == pytest.approx(15.667, abs=1e-3)
    assert "| labels matter | more is better | mIoU all - one_per_video: +15.67" in written["md"].read_text()
    assert verdict.per_seed == pytest.approx({"1": 15.0, "2": 16.0, "3": 16.0})
    assert "| +15.00, +16.00, +16.00 (sd 0.58) |" in written["md"].read_text()  # seed by seed, their sd
    rows = list(csv.DictReader((root / "verdicts.csv").open()))
    assert rows[0]["claim_verdict"] == "agrees" and rows[0]["seeds"] == "3" and rows[0]["margin"] == "5"
    import ledger

    (read,) = ledger.read_verdicts(root / "verdicts.csv")
    assert read.margin == 5.0 and read.verdict == "agrees"  # the ledger keeps the margin the claim asked


def test_lower_is_better_and_within_claims():
    wall = [study_stats.Run({"method": m, "seed": str(s)}, {"wall_seconds": w + s})
            for s in range(3) for m, w in (("mean_teacher", 100.0), ("iterative", 180.0))]
    (v,) = study_stats.judge({"claim": "faster", "metric": "wall_seconds", "better": "mean_teacher",
                              "than": "iterative", "lower_is_better": True}, wall, "method")
    assert v.mean == pytest.approx(-80.0) and v.verdict == "agrees"  # seconds, not x100
    noise = [0.0, 0.001, -0.001, 0.0005]
    close = {("mt", str(s)): 0.450 + noise[s] for s in range(4)} | {("all", str(s)): 0.452 for s in range(4)}
    (v,) = study_stats.judge({"claim": "as good", "better": "mt", "than": "all", "within": 1.0}, runs(close), "x")
    assert v.verdict == "agrees"
    far = {("mt", str(s)): 0.40 + noise[s] for s in range(4)} | {("all", str(s)): 0.45 for s in range(4)}
    (v,) = study_stats.judge({"claim": "as good", "better": "mt", "than": "all", "within": 1.0}, runs(far), "x")
    assert v.verdict == "opposite"


def test_ledger_tabulates_each_studys_verdicts_and_the_cross_study_claim(tmp_path):
    import ledger

    experiments = tmp_path / "experiments"
    methods, bench = experiments / "study_methods", experiments / "bench"
    for folder, key, cells in [
        (methods, "method", {"mean_teacher": 0.40, "supervised": 0.35, "iterative": 0.38}),
        (bench, "data.labels", {"all": 0.48, "one_per_video": 0.35}),
    ]:
        root = tmp_path / folder.name
        root.mkdir()
        expect = ([{"claim": "MT above supervised", "paper": "p", "better": "mean_teacher", "than": "supervised"}]
                  if key == "method" else [{"claim": "labels matter", "better": "all", "than": "one_per_video"}])
        (root / "multirun.yaml").write_text(yaml.safe_dump({"study": {"x": key, "expect": expect}}))
        jobs = [(value, seed, miou + 0.002 * seed) for value, miou in cells.items() for seed in (1, 2, 3)]
        for i, (value, seed, miou) in enumerate(jobs):
            fake_job(root, i, [f"{key}={value}", f"seed={seed}"], miou)
        aggregate.aggregate(root, out=folder)
    readme = experiments / "README.md"
    readme.write_text("# Experiments\n\nintro\n\n<!-- ledger -->\nold table\n<!-- /ledger -->\n\nmore text\n")
    assert ledger.main([str(experiments)]) == 0
    text = readme.read_text()
    assert text.startswith("# Experiments\n\nintro") and text.endswith("more text\n") and "old table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| synthetic, random weights | MT above supervised"))
    assert "mIoU mean_teacher - supervised: +5.00 ± 0.00 (3 seeds, paired)" in row and "**agrees**" in row
    cross = next(line for line in text.splitlines() if line.startswith("| synthetic, random weights | Mean Teacher (1 label / video)"))
    assert "mean_teacher - all: -8.00" in cross and "**opposite**" in cross  # 8 points apart, margin 1
    assert "| synthetic, random weights | study_gcc: not run at this scale yet |" in text
    assert "| CamVid, ImageNet encoder | camvid_bench: not run at this scale yet |" in text
    assert "| CamVid, ImageNet encoder | camvid_ablations/gcc: not run at this scale yet |" in text
    again = experiments / "study_temporal" / "mean_teacher"  # a study's claims measured again: named so
    aggregate.aggregate(tmp_path / "study_methods", out=again)
    ledger.main([str(experiments)])
    assert "| MT above supervised (under Mean Teacher) | p |" in readme.read_text()
    bench_claim = ledger.CROSS_CLAIMS[1]  # two cells of one study, told apart by their other overrides
    assert bench_claim["a"][3] == {"model": "ssltm", "data.labels": "one_per_video"}
    (methods / "verdicts.csv").unlink()  # a folder without verdicts.csv predates the current scale
    ledger.main([str(experiments)])
    assert "| Mean Teacher (1 label / video) as good as full supervision: not run" in readme.read_text()


def test_ledger_cross_claim_within_one_study_keeps_the_cells_apart(tmp_path):
    """CamVid bench: Mean Teacher (SSLTM) against every frame labelled (SSLTM), per-frame runs left out."""
    import ledger

    root, out = tmp_path / "sweep", tmp_path / "experiments" / "camvid_bench"
    root.mkdir()
    expect = [{"claim": "MT above per-frame", "key": "model", "better": "", "than": "ssltm_per_frame"}]
    (root / "multirun.yaml").write_text(yaml.safe_dump({"study": {"x": "method", "expect": expect}}))
    cells = [(["method=mean_teacher"], 0.50), (["data.labels=all"], 0.52),
             (["model=ssltm_per_frame", "method=mean_teacher"], 0.10)]
    jobs = [(overrides, seed, miou) for overrides, miou in cells for seed in (1, 2, 3)]
    for i, (overrides, seed, miou) in enumerate(jobs):
        fake_job(root, i, [*overrides, f"seed={seed}"], miou + 0.001 * seed)
    # aggregated as experiments/camvid_bench/README.md says: the settings a cell leaves at the default are named
    defaults = {"model": "ssltm", "method": "supervised", "backbone.pretrained": "true", "data.labels": "one_per_video"}
    aggregate.aggregate(root, out=out, defaults=defaults)
    (v,) = ledger.cross_verdicts(tmp_path / "experiments", ledger.CROSS_CLAIMS[1])
    assert v.seeds == 3 and round(v.mean, 2) == -2.00  # 0.50 - 0.52, the per-frame runs not mixed in


def fake_stt_sweep(root, seeds, gain, per_seed):
    """A study_stt multirun of `seeds` (the grid asks for seeds 1..3): mIoU 0.40 + `gain` with STT
    + `per_seed` x seed."""
    root.mkdir()
    (root / "multirun.yaml").write_text(yaml.safe_dump({
        "study": {"title": "stt", "x": "model.stt.enabled",
                  "expect": [{"claim": "stt helps", "better": "true", "than": "false"}]},
        "hydra": {"sweeper": {"params": {"model.stt.enabled": "true,false", "seed": "1,2,3"}},
                  "overrides": {"task": ["experiment=study_stt", "seed=" + ",".join(map(str, seeds))]}},
    }))
    for i, (stt, seed) in enumerate(itertools.product(["true", "false"], seeds)):
        fake_job(root, i, [f"model.stt.enabled={stt}", f"seed={seed}"], 0.40 + gain * (stt == "true") + per_seed * seed)
    return root


def test_aggregate_reads_a_study_spread_over_several_multiruns(tmp_path):
    """`seed=1,2` in one multirun and `seed=3` in another (two sessions): one table, 3 runs a
    cell, nothing missing; jobs named <multirun>/<job>."""
    for name, seeds in (("first", [1, 2]), ("second", [3])):
        fake_stt_sweep(tmp_path / name, seeds, gain=0.05, per_seed=0.001)
    assert aggregate.main([str(tmp_path / "first"), str(tmp_path / "second"), f"out={tmp_path / 'all'}"]) == 0
    table = (tmp_path / "all" / "results.md").read_text()
    assert "| true | 3 |" in table and "| false | 3 |" in table and "Missing" not in table
    (verdict,) = list(csv.DictReader((tmp_path / "all" / "verdicts.csv").open()))
    assert verdict["seeds"] == "3" and verdict["verdict"] == "agrees"
    folders = {r["folder"] for r in csv.DictReader((tmp_path / "all" / "results.csv").open())}
    assert "second/0" in folders and "first/3" in folders


def test_learning_curves_name_multirun_jobs_by_sweep_and_judge_the_plateau(tmp_path):
    """Job folders of two sweeps are all called 0, 1, ...: the curves keep them apart
    (<sweep>/<job>), and the plateau rule reads the last quarter of the steps."""
    import learning_curves

    for sweep, values in (("per_frame", [0.30, 0.50, 0.54, 0.545]), ("ssltm", [0.30, 0.40, 0.50, 0.60])):
        log = tmp_path / sweep / "0" / "csv" / "metrics.csv"
        log.parent.mkdir(parents=True)
        rows = [f"0,{250 * (i + 1) - 1},{v}" for i, v in enumerate(values)]
        log.write_text("epoch,step,val/mIoU\n" + "\n".join(rows) + "\n")
    out = tmp_path / "curves"
    assert learning_curves.main([str(tmp_path / "per_frame" / "0"), str(tmp_path / "ssltm" / "0"), f"out={out}"]) == 0
    runs = {row["run"] for row in csv.DictReader((out / "curves.csv").open())}
    assert runs == {"per_frame/0", "ssltm/0"}
    plateau = (out / "plateau.md").read_text()
    assert "| per_frame/0 | 1000 | 54.50 | 750 | yes |" in plateau
    assert "| ssltm/0 | 1000 | 60.00 | 1000 | no |" in plateau


def test_aggregate_compares_runs_of_two_studies_with_where_and_default(tmp_path):
    """Per-frame runs of one sweep against the SSLTM runs of another study whose jobs never set
    `model` (its default): `default.model=ssltm` names them, `where.method=mean_teacher` keeps that
    method's runs (and asked-for settings) only; an unknown option is one clear line."""
    temporal, methods = tmp_path / "temporal", tmp_path / "methods"
    for root, study in ((temporal, "study_temporal"), (methods, "study_methods")):
        root.mkdir()
    (temporal / "multirun.yaml").write_text(yaml.safe_dump({
        "study": {"title": "temporal", "x": "model",
                  "expect": [{"claim": "SSLTM above per-frame", "better": "ssltm", "than": "ssltm_per_frame"}]},
        "hydra": {"sweeper": {"params": {"model": "ssltm,ssltm_per_frame", "seed": "1,2,3"}},
                  "overrides": {"task": ["experiment=study_temporal", "method=mean_teacher",
                                         "model=ssltm_per_frame", "seed=1,2,3"]}},
    }))
    (methods / "multirun.yaml").write_text(yaml.safe_dump({
        "study": {"title": "methods", "x": "method"},
        "hydra": {"sweeper": {"params": {"method": "supervised,mean_teacher", "seed": "1,2,3"}}},
    }))
    for seed in (1, 2, 3):
        fake_job(temporal, seed - 1, ["experiment=study_temporal", "method=mean_teacher", "model=ssltm_per_frame",
                                      f"seed={seed}"], 0.40 + 0.001 * seed)
        fake_job(methods, 2 * seed - 2, ["experiment=study_methods", "method=mean_teacher", f"seed={seed}"],
                 0.45 + 0.001 * seed)
        fake_job(methods, 2 * seed - 1, ["experiment=study_methods", "method=supervised", f"seed={seed}"], 0.30)
    out = tmp_path / "out"
    assert aggregate.main([str(temporal), str(methods), f"out={out}", "where.method=mean_teacher",
                           "default.model=ssltm"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 6 and {r["model"] for r in rows} == {"ssltm", "ssltm_per_frame"}
    (verdict,) = list(csv.DictReader((out / "verdicts.csv").open()))
    assert verdict["seeds"] == "3" and verdict["paired"] == "True" and verdict["verdict"] == "agrees"
    assert float(verdict["mean"]) == pytest.approx(5.0)
    assert "Missing" not in (out / "results.md").read_text()
    shutil.rmtree(methods / "4")  # mean_teacher seed 3 of study_methods never ran
    assert aggregate.main([str(temporal), str(methods), f"out={out}", "where.method=mean_teacher",
                           "default.model=ssltm"]) == 0
    missing = (out / "results.md").read_text().split("Missing runs")[1]
    assert "model=ssltm method=mean_teacher seed=3" in missing and "supervised" not in missing
    assert "ssltm_per_frame" not in missing
    assert aggregate.main([str(temporal), "only.method=x"]) == 2


def test_raw_unit_claims_are_shown_in_readable_units():
    # bytes and seconds stay raw in verdicts.csv but read as MB and minutes in the tables
    table = {("a", str(s)): 10e6 + 1e3 * s for s in range(5)} | {("b", str(s)): 40e6 for s in range(5)}
    rows = [study_stats.Run({"x": v, "seed": s}, {"disk_bytes": m}) for (v, s), m in table.items()]
    (v,) = study_stats.judge({"claim": "a writes less", "metric": "disk_bytes", "better": "a", "than": "b",
                              "lower_is_better": True}, rows, "x")
    assert v.mean == pytest.approx(-29.998e6) and v.verdict == "agrees"
    assert ": -30.00 ± 0.00 MB (5 seeds, paired)" in v.measured()


def test_aggregate_extends_a_committed_results_csv_with_a_later_sweep(tmp_path, capsys):
    """Session 1 aggregates seeds 1-2 into results.csv and deletes its run folders; session 2 runs
    seed 3 and aggregates the CSV with its sweep: one table of 3 seeds a cell, the same values as
    from all three folders, the verdict on 3 paired seeds, and the CSV's rows keep their folders."""
    first = aggregate.aggregate(fake_stt_sweep(tmp_path / "first", [1, 2], gain=0.03, per_seed=0.01),
                                out=tmp_path / "study")
    assert first["ok"] == 4 and first["verdicts"][0].seeds == 2
    second = fake_stt_sweep(tmp_path / "second", [3], gain=0.03, per_seed=0.01)
    assert aggregate.main([str(tmp_path / "study" / "results.csv"), str(second), f"out={tmp_path / 'study'}",
                           "default.experiment=study_stt"]) == 0
    rows = list(csv.DictReader((tmp_path / "study" / "results.csv").open()))
    assert "experiment" not in rows[0]  # a default every run shares is no column
    assert sorted((r["model.stt.enabled"], r["seed"]) for r in rows) == sorted(
        itertools.product(["true", "false"], ["1", "2", "3"]))
    assert {r["folder"] for r in rows} >= {"0", "3", "second/0"}  # the first sweep's jobs keep their names
    seed1 = next(r for r in rows if r["seed"] == "1" and r["model.stt.enabled"] == "true")
    assert float(seed1["mIoU"]) == pytest.approx(0.44)
    table = (tmp_path / "study" / "results.md").read_text()
    assert "| true | 3 | 45.00 ± 2.48 |" in table and "| false | 3 | 42.00 ± 2.48 |" in table
    (verdict,) = list(csv.DictReader((tmp_path / "study" / "verdicts.csv").open()))
    assert verdict["seeds"] == "3" and verdict["paired"] == "True" and verdict["verdict"] == "agrees"
    text = (tmp_path / "study" / "results.csv").read_text()
    # the second session's folder not deleted yet, and a copy of the CSV: each run counts once
    shutil.copy(tmp_path / "study" / "results.csv", tmp_path / "copy.csv")
    twice = aggregate.aggregate([tmp_path / "study" / "results.csv", tmp_path / "copy.csv", second],
                                out=tmp_path / "twice", defaults={"experiment": "study_stt"})
    assert twice["ok"] == 6 and twice["verdicts"][0].seeds == 3
    two_folders = [aggregate.Job(tmp_path / "a", {}, "0"), aggregate.Job(tmp_path / "b", {}, "0")]
    assert aggregate.read_once(two_folders) == two_folders  # one name, two folders: two runs
    listed = aggregate.Job(tmp_path, {"method": "fixmatch", "seed": "2"}, "seeds_2/0", from_csv=True)
    other = aggregate.Job(tmp_path / "b", {"method": "mean_teacher", "seed": "2"}, "seeds_2/0")
    assert aggregate.read_once([listed, other]) == [listed, other]  # one name, other overrides: two runs
    assert aggregate.main([str(tmp_path / "study" / "results.csv"), f"out={tmp_path / 'again'}"]) == 0
    assert (tmp_path / "again" / "results.csv").read_text() == text  # read back and written unchanged
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")  # not a results.csv: one line naming it
    assert aggregate.main([str(tmp_path / "other.csv"), f"out={tmp_path / 'x'}"]) == 1
    (tmp_path / "edited.csv").write_text(re.sub(r",ok,[^,]+,", ",ok,forty-four,", text, count=1))  # hand-edited mIoU
    capsys.readouterr()
    assert aggregate.main([str(tmp_path / "edited.csv"), f"out={tmp_path / 'x'}"]) == 1
    assert capsys.readouterr().err.strip().endswith("mIoU is 'forty-four', not a number")


def test_aggregate_judges_by_the_study_of_another_config_when_asked(tmp_path, capsys):
    """Runs launched without claims (or from another experiment) are judged by `study=<config>`:
    its claims give verdicts.csv, its title heads results.md; a config without `study:` or a
    missing one is one clear line."""
    root = fake_multirun(tmp_path / "multirun")  # study_gcc's grid, no claims
    fake_job(root, 3, ["model.gcc.k=2", "model.gcc.update=mse", "seed=2", "experiment=study_gcc"], 0.40)
    shutil.rmtree(root / "2")
    fake_job(root, 2, ["model.gcc.k=2", "model.gcc.update=mse", "seed=1", "experiment=study_gcc"], 0.30)
    assert aggregate.main([str(root), f"out={tmp_path / 'plain'}"]) == 0
    assert not (tmp_path / "plain" / "verdicts.csv").exists()
    config = tmp_path / "judge.yaml"
    config.write_text(yaml.safe_dump({"study": {"title": "K judged", "x": "model.gcc.k",
                                                "expect": [{"claim": "K=1 above K=2", "better": "1", "than": "2"}]}}))
    assert aggregate.main([str(root), f"out={tmp_path / 'judged'}", f"study={config}"]) == 0
    (verdict,) = list(csv.DictReader((tmp_path / "judged" / "verdicts.csv").open()))
    assert verdict["claim"] == "K=1 above K=2" and verdict["seeds"] == "2"
    assert float(verdict["mean"]) == pytest.approx(25.0)
    assert (tmp_path / "judged" / "results.md").read_text().startswith("## K judged")
    (tmp_path / "bare.yaml").write_text("task_name: x\n")
    capsys.readouterr()
    assert aggregate.main([str(root), f"study={tmp_path / 'bare.yaml'}"]) == 1
    assert aggregate.main([str(root), "study=no_such_experiment"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].endswith("bare.yaml has no study: node") and "no experiment config" in errors[1]
    assert aggregate.read_study("study_gcc")["x"] == "model.gcc.k"  # by name, from conf/experiment/


def test_missing_seeds_are_those_no_finished_run_holds(tmp_path, capsys):
    """A lane resumes a cell: seeds finished in a run folder or listed (ok) in a committed
    results.csv are done; a failed job, another cell's runs or a failed CSV row are not."""
    import missing_seeds

    runs = tmp_path / "outputs"
    fake_job(runs / "stt_off_seeds_1_2", 0, ["seed=1", "model.stt.enabled=false"], 0.4)
    fake_job(runs / "stt_off_seeds_1_2", 1, ["seed=2", "model.stt.enabled=false"])  # failed: no metrics.json
    fake_job(runs / "qfce_seeds_3", 0, ["seed=3", "model.context=qfce"], 0.4)  # another cell
    results = tmp_path / "results.csv"
    results.write_text("seed,status,mIoU,folder\n4,ok,0.4,stt_off_seeds_4/0\n5,failed,,stt_off_seeds_5/0\n"
                       "6,ok,0.4,stt_offset_seeds_6/0\n")
    assert missing_seeds.main(["stt_off", "1,2,3,4,5,6", str(runs), str(results), str(tmp_path / "none.csv")]) == 0
    assert capsys.readouterr().out.strip() == "2,3,5,6"
    assert missing_seeds.main(["qfce", "3", str(runs)]) == 0 and capsys.readouterr().out.strip() == ""
    assert missing_seeds.main(["qfce"]) == 2
