"""Printing and saving evaluation results (one format for train, eval and score)."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ssltm.utils.diskstats import write_json


def metrics_table(result: dict, class_names: list[str], title: str = "evaluation") -> Table:
    """A table: summary metrics, then the IoU of each class present in the ground truth."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("mIoU", "mVC8", "mVC16"):
        table.add_row(key, _fmt(result[key]))
    for key in ("windows8", "windows16"):
        table.add_row(f"{key} (count)", str(result[key]))
    for name in ("clean", "noisy"):  # the reference-frame subsets, when scored
        if f"{name}/mIoU" in result:
            table.add_row(f"mIoU {name} frames ({result[f'{name}_frames']})", _fmt(result[f"{name}/mIoU"]))
    absent = 0
    for name, iou in zip(class_names, result["per_class_iou"], strict=True):
        if math.isnan(iou):
            absent += 1
        else:
            table.add_row(f"IoU {name}", _fmt(iou))
    if absent:
        table.caption = f"{absent} classes absent from the ground truth are not listed"
    return table


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def to_json_result(result: dict, class_names: list[str], **extra) -> dict:
    """metrics.json content: fractions in [0, 1]; NaN (absent class) becomes null."""

    def clean(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    out = {k: clean(result[k]) for k in ("mIoU", "mVC8", "mVC16", "windows8", "windows16")}
    out.update({k: clean(v) for k, v in result.items() if "/" in k or k.endswith("_frames")})  # subsets
    out["per_class_iou"] = {n: clean(v) for n, v in zip(class_names, result["per_class_iou"], strict=True)}
    out.update(extra)
    return out


def write_metrics(path: str | Path, result: dict, class_names: list[str], **extra) -> Path:
    """Write metrics.json atomically (temp file, then rename) and return its path."""
    return write_json(path, to_json_result(result, class_names, **extra))


def print_result(result: dict, class_names: list[str], title: str, console: Console | None = None) -> None:
    (console or Console()).print(metrics_table(result, class_names, title))
