"""Multi-process training on CPU (gloo): the GCC memory and the teacher are the same on every
process, the GCC update equals one process's on the whole global batch, and the metrics are
summed over the processes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import compose_config

import eval as eval_entry
import train as train_entry
from ssltm.models.gcc import GlobalCategoryContext

NUM_CLASSES, CHANNELS, K, STEPS = 4, 8, 3, 3


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """STEPS global batches of 4 feature maps (4 C 6 6) with labels at twice the size; class 3
    first appears in step 1, and only in the second half of the batch."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for step in range(STEPS):
        features = torch.randn(4, CHANNELS, 6, 6, generator=generator)
        labels = torch.randint(0, 3 if step == 0 else NUM_CLASSES, (4, 12, 12), generator=generator)
        if step == 1:
            labels[:2][labels[:2] == 3] = 0
        labels[0, :2] = 255  # some ignored pixels
        batches.append((features, labels))
    return batches


def _train_gcc(update: str, rank: int = 0, world: int = 1) -> GlobalCategoryContext:
    """STEPS updates on this process's share of each global batch; the mse update's gradient is
    averaged over the processes as DDP does."""
    torch.manual_seed(0)
    gcc = GlobalCategoryContext(NUM_CLASSES, CHANNELS, K, update, momentum=0.5)
    optimizer = torch.optim.SGD(gcc.parameters(), lr=0.5)
    share = 4 // world
    for features, labels in _batches():
        part = slice(rank * share, (rank + 1) * share)
        loss = gcc.update(features[part], labels[part])
        if update == "mse":
            optimizer.zero_grad()
            loss.backward()
            if world > 1:
                dist.all_reduce(gcc.prototypes.grad)
                gcc.prototypes.grad /= world
            optimizer.step()
    return gcc


def _worker(rank: int, world: int, update: str, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        gcc = _train_gcc(update, rank, world)
        torch.save({"prototypes": gcc.prototypes.detach(), "initialized": gcc.initialized}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("update", ["ema", "mse"])
def test_gcc_memory_over_two_processes_equals_one_process_with_the_whole_batch(tmp_path, update):
    out = str(tmp_path / "gcc")
    mp.spawn(_worker, args=(2, update, str(tmp_path / "init"), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    single = _train_gcc(update)
    assert bool(single.initialized.all())
    for state in ranks:
        assert torch.equal(state["initialized"], single.initialized)
        torch.testing.assert_close(state["prototypes"], single.prototypes.detach(), atol=1e-5, rtol=0)
    assert torch.equal(ranks[0]["prototypes"], ranks[1]["prototypes"])  # the same on both ranks


def _last_logged(path: Path, key: str) -> float:
    rows = [r for r in csv.DictReader(path.open()) if r.get(key)]
    return float(rows[-1][key])


def _train_two_processes(train_cfg_factory, run: Path, *overrides: str) -> list[dict]:
    """Train with two CPU processes (ddp_spawn) into `run`; each process's final state dict."""
    train_entry.run(train_cfg_factory(
        "trainer=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2", "callbacks.rich_progress_bar=null",
        "+callbacks.state._target_=run_helpers.SaveFinalState", f"+callbacks.state.folder={run / 'state'}",
        *overrides, output_dir=run,
    ))
    return [torch.load(run / "state" / f"rank{r}.pt") for r in range(2)]


def test_ddp_spawn_training_keeps_the_processes_identical_and_syncs_metrics(train_cfg_factory, tmp_path):
    """Two CPU processes train Mean Teacher with the GCC: afterwards the student, the teacher
    (batch-norm statistics included) and the GCC memory are the same on both; the validation
    mIoU over the two processes' videos equals one process evaluating every video."""
    run = tmp_path / "ddp"
    states = _train_two_processes(train_cfg_factory, run, "method=mean_teacher", "data.steps_per_epoch=3")
    assert states[0].keys() == states[1].keys()
    assert any(k.startswith("teacher.") and "running_mean" in k for k in states[0])
    assert any("gcc.prototypes" in k for k in states[0])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key

    # the DDP validation of `best` (each process one of the 2 videos) against one process
    # evaluating both videos, and against the first video alone (what an unsynced rank 0 reports).
    # The untrained network has many near-ties between classes, so numerics that differ with the
    # processes' thread counts may flip a few pixels: hence a tolerance far below the gap to the
    # one-video score.
    best = next((run / "checkpoints").glob("epoch_*.ckpt"))
    logged = _last_logged(run / "csv" / "metrics.csv", "val/mIoU")
    both, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={best}"], tmp_path / "eval"))
    first, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={best}", "+data.source.val_videos=1"],
                                             tmp_path / "eval_first"))
    assert abs(logged - both["mIoU"]) < abs(both["mIoU"] - first["mIoU"]) / 10
    assert abs(logged - both["mIoU"]) < 1e-3


def test_ddp_evaluation_with_fewer_videos_than_processes(train_cfg_factory, tmp_path):
    """One validation video, two processes: the second gets a padding batch it does not score, so
    both take part in the evaluation and the logged metrics are those of the one video."""
    run = tmp_path / "ddp"
    cfg = train_cfg_factory(
        "trainer=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2", "data.source.val_videos=1",
        "data.steps_per_epoch=2", "callbacks.rich_progress_bar=null", output_dir=run,
    )
    train_entry.run(cfg)
    logged = _last_logged(run / "csv" / "metrics.csv", "val/mIoU")
    alone, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"], tmp_path / "e"))
    assert abs(logged - alone["mIoU"]) < 1e-3


@pytest.mark.parametrize("method", ["unimatch", "unimatch_v2"])
def test_ddp_spawn_trains_unimatch_with_identical_processes(train_cfg_factory, tmp_path, method):
    """FixMatch / UniMatch (V2) under DDP: after two CPU processes train, their weights (GCC memory
    included) are the same (CutMix boxes and dropout are drawn per process, the update is shared)."""
    states = _train_two_processes(train_cfg_factory, tmp_path / "ddp", f"method={method}", "data.steps_per_epoch=2")
    assert any("gcc.prototypes" in k for k in states[0])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
