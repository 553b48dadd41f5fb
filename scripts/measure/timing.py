"""Measuring: timing interleaved variants, peak memory, the machine, saving and showing results."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import ssltm  # noqa: F401  (registers config resolvers)

ROOT = Path(__file__).resolve().parents[2]
console = Console()
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- measuring ---------------------------------------------------------------------------------
def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def compare_times(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, dict]:
    """Median seconds of each variant over `repeats` runs, the variants interleaved."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            runs[name].append(timed(fn))
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "repeats": len(t)}
            for name, t in runs.items()}


def largest_rise(deltas: list[int]) -> int:
    """The largest rise of a running total of allocations (+) and frees (-): the peak above the
    lowest point before it."""
    total = low = rise = 0
    for delta in deltas:
        total += delta
        low = min(low, total)
        rise = max(rise, total - low)
    return rise


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak memory (bytes) that one steady-state run of `fn()` needs on top of what exists before
    it (weights, inputs, optimiser state), after one warm-up run.

    GPU: torch.cuda.max_memory_allocated. CPU: the allocations and frees that torch's profiler
    records during the run, whose running total's largest rise is the peak (a run that first frees
    the previous gradients and then makes new ones counts them once)."""
    fn()
    sync()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    return largest_rise([e.nbytes() for e in events])


def machine() -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": DEVICE.type,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    if DEVICE.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save(out: Path, what: str, result: dict, tag: str | None = None) -> None:
    """<out>/<what>.json, or <what>-<tag>.json for a further setting of the same benchmark."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"what": what, "tag": tag, "machine": machine(),
              "command": "python scripts/bench.py " + " ".join(sys.argv[1:]), **result}
    path = out / (f"{what}-{tag}.json" if tag else f"{what}.json")
    path.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {path}")


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def show(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    console.print(table)
