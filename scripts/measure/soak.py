"""`bench.py soak`: does a long run leak memory? The resident memory of a Mean Teacher run (GCC on)
on the synthetic set, sampled every `--soak-every` training steps for `--soak-steps` steps; the
growth from step 200 to the end should stay under 5%."""

from __future__ import annotations

import os
import time

import pytorch_lightning as pl

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import ROOT, show
from ssltm.runs.config import compose_config
from ssltm.runs.fit import fit


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc; the data loader workers are other processes)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class MemorySampler(pl.Callback):
    def __init__(self, every: int) -> None:
        self.every, self.samples = every, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every == 0:
            self.samples.append((trainer.global_step, resident_bytes()))


def growth(samples: list[tuple[int, int]], start: int) -> float:
    """Relative growth of resident memory from the first sample at or after `start` to the last."""
    after = [rss for step, rss in samples if step >= start]
    return (after[-1] - after[0]) / after[0] if len(after) > 1 else float("nan")


def bench_soak(args) -> dict:
    steps, every = args.soak_steps, args.soak_every
    out = ROOT / "outputs" / "bench" / f"soak_{time.strftime('%Y%m%d_%H%M%S')}"
    cfg = compose_config("train", [
        "experiment=synthetic_mean_teacher", "model.gcc.enabled=true", f"data.steps_per_epoch={steps}",
        "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1", "callbacks.image_panels.every_n_steps=0",
        "callbacks.rich_progress_bar=null", *args.overrides], out)
    sampler = MemorySampler(every)
    start = time.perf_counter()
    fit(cfg, callbacks=[sampler])
    seconds = time.perf_counter() - start
    samples = sampler.samples
    result = {"experiment": "synthetic_mean_teacher", "steps": steps, "every": every, "seconds": round(seconds, 1),
              "rss_mb": [[s, round(b / 2**20, 1)] for s, b in samples],
              "growth_from_step_200": round(growth(samples, 200), 4), "target": 0.05}
    show("soak: resident memory of a Mean Teacher run", ["step", "RSS (MB)"],
         [[s, f"{b / 2**20:.1f}"] for s, b in samples])
    print(f"growth from step 200 to {samples[-1][0]}: {100 * result['growth_from_step_200']:.2f}% (target < 5%)")
    return result
