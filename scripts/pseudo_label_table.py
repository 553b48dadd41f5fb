"""Per-class pseudo-label coverage and accuracy of semi-supervised runs, as their logs recorded it.

    python scripts/pseudo_label_table.py <cell folder or run folder> [...] [epoch=last]

A cell folder holds run folders (`<cell>/0`, `<cell>/1`, ...: one per seed) with a CSV log
(`csv/metrics.csv`) of a weak-to-strong method (Mean Teacher, FixMatch, UniMatch), which logs once
an epoch `train/pseudo_coverage/<class>` (share of the class's pixels, by the hidden ground truth,
that carry a pseudo-label) and `train/pseudo_accuracy/<class>` (share of those that are right).
Prints a markdown table: per cell, the mean over its runs of each class's coverage and accuracy at
the chosen epoch (default: each run's last logged epoch), in %.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

PREFIX = "train/pseudo_"


def epoch_rows(log: Path) -> list[dict[str, str]]:
    """The rows of a CSV log that hold the per-class pseudo-label figures (one per epoch)."""
    with log.open() as f:
        return [r for r in csv.DictReader(f) if any(k.startswith(PREFIX + "coverage/") and v for k, v in r.items())]


def runs_of(folder: Path) -> list[Path]:
    if (folder / "csv" / "metrics.csv").is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / "csv" / "metrics.csv").is_file())


def cell_table(folder: Path, epoch: str = "last") -> tuple[list[str], dict[str, dict[str, float]], int]:
    """(class names in log order, {coverage|accuracy: {class: mean %}}, runs used)."""
    sums: dict[tuple[str, str], list[float]] = {}
    names: list[str] = []
    used = 0
    for run in runs_of(folder):
        rows = epoch_rows(run / "csv" / "metrics.csv")
        if epoch != "last":
            rows = [r for r in rows if r.get("epoch") == epoch]
        if not rows:
            continue
        used += 1
        for key, value in rows[-1].items():
            if key.startswith(PREFIX) and "/" in key[len(PREFIX):] and value:
                kind, name = key[len(PREFIX):].split("/", 1)
                if name not in names:
                    names.append(name)
                sums.setdefault((kind, name), []).append(100 * float(value))
    means = {kind: {n: sum(v) / len(v) for (k, n), v in sums.items() if k == kind} for kind in ("coverage", "accuracy")}
    return names, means, used


def main(argv: list[str]) -> int:
    epoch = next((a.split("=", 1)[1] for a in argv if a.startswith("epoch=")), "last")
    folders = [Path(a) for a in argv if not a.startswith("epoch=")]
    if not folders:
        print(__doc__)
        return 2
    for folder in folders:
        if not folder.is_dir():
            print(f"error: {folder}: not a folder")
            return 2
        names, means, used = cell_table(folder, epoch)
        if not used:
            print(f"error: {folder}: no run with per-class pseudo-label figures (train/pseudo_coverage/<class>)")
            return 2
        print(f"\n{folder} ({used} runs, epoch {epoch}), %:\n")
        print("| | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for kind in ("coverage", "accuracy"):
            cells = [f"{means[kind][n]:.0f}" if n in means[kind] else "-" for n in names]
            print(f"| {kind} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
