"""Training curves of a run from its CSV log, for people without W&B:

    python scripts/plot_run.py <run folder> [out=<png>]

Reads `<run folder>/csv/metrics.csv` (the `csv` logger, on by default; iterative self-training
runs have one per stage folder) and draws one panel per group of metrics that the run logged:
losses, validation mIoU / mVC (teacher and student), pseudo-labels (coverage, accuracy against the
hidden ground truth, unsupervised weight) and the learning rate. Writes `<run folder>/curves.png`.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: panel title -> which logged columns go into it (a column is drawn in the first panel it fits)
PANELS = {
    "training losses": lambda c: c.startswith("train/") and ("loss" in c or c.startswith("train/sup_")
                                                            or c in ("train/unsup", "train/gcc", "train/ce", "train/aux")),
    "validation (%)": lambda c: c.startswith("val/") and c.split("/")[-1] in ("mIoU", "mVC8", "mVC16"),
    "pseudo-labels": lambda c: c in ("train/pseudo_coverage", "train/pseudo_accuracy", "train/unsup_weight",
                                     "train/pseudo_coverage/objects", "train/pseudo_accuracy/objects"),
    "learning rate": lambda c: c.startswith("lr-") or c.startswith("lr/"),
}


class CsvLogError(ValueError):
    pass


def read_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """column -> [(step, value)] for every numeric cell of a Lightning CSV log."""
    if not path.is_file():
        raise CsvLogError(f"{path}: no CSV log (train with logger=csv, the default, or logger=many)")
    series: dict[str, dict[int, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or "nan"))
            except ValueError:
                continue
            for key, cell in row.items():
                if key in ("step", "epoch") or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(key, {})[step] = value  # a resumed run logs some steps again: the later row wins
    if not series:
        raise CsvLogError(f"{path}: the log holds no values yet")
    return {key: sorted(values.items()) for key, values in series.items()}


def plot(series: dict[str, list[tuple[int, float]]], out: Path, title: str) -> Path:
    groups = {name: [c for c in sorted(series) if test(c)] for name, test in PANELS.items()}
    groups = {name: cols for name, cols in groups.items() if cols}
    if not groups:
        raise CsvLogError(f"no known metric among {sorted(series)[:8]}")
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.4), squeeze=False)
    for ax, (name, columns) in zip(axes[0], groups.items()):
        for column in columns:
            steps, values = zip(*series[column])
            scale = 100.0 if name == "validation (%)" else 1.0
            style = "o-" if len(steps) < 30 else "-"
            ax.plot(steps, [scale * v for v in values], style, label=column, markersize=3, linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if name == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(argv[0])
    out = next((Path(a.split("=", 1)[1]) for a in argv[1:] if a.startswith("out=")), run / "curves.png")
    try:
        path = plot(read_log(run / "csv" / "metrics.csv"), out, title=str(run))
    except CsvLogError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"curves: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
