"""Validation learning curves of several runs, and whether each reached its plateau.

    python scripts/learning_curves.py <run folder> [<run folder> ...] out=<folder> [metric=val/mIoU] [tolerance=1.0]

Each run folder holds a CSV log (`csv/metrics.csv`) validated often (e.g. every 100 steps). Writes
into `out`:
    curves.csv   run, step, value: every validation of every run (the raw data of the plot)
    curves.png   the metric against the step, one line per run
    plateau.md   per run: the final value, the first step from which every later validation stays
                 within `tolerance` points of the final value, and whether that step falls in the
                 first 75% of the run ("plateau": the last quarter moves by at most `tolerance`)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from plot_run import CsvLogError, read_log  # noqa: E402


def curve(run: Path, metric: str) -> list[tuple[int, float]]:
    """(step, value in points) of every validation of `metric` in the run's CSV log."""
    points = read_log(run / "csv" / "metrics.csv").get(metric)
    if not points:
        raise CsvLogError(f"{run}: the log has no {metric!r} values")
    return [(step + 1, 100.0 * value) for step, value in points]  # Lightning logs the step before


def run_name(run: Path) -> str:
    """The run's folder name; <sweep>/<job> for a multirun's numbered job folders."""
    return f"{run.parent.name}/{run.name}" if run.name.isdigit() else run.name


def plateau(points: list[tuple[int, float]], tolerance: float) -> tuple[int, bool]:
    """The first step from which every later value is within `tolerance` of the final value, and
    whether that step lies within the first 75% of the run."""
    final = points[-1][1]
    since = points[-1][0]
    for step, value in reversed(points):
        if abs(value - final) > tolerance:
            break
        since = step
    return since, since <= 0.75 * points[-1][0]


def main(argv: list[str]) -> int:
    options = dict(a.split("=", 1) for a in argv if "=" in a)
    runs = [Path(a) for a in argv if "=" not in a]
    if not runs or "out" not in options:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    metric, tolerance = options.get("metric", "val/mIoU"), float(options.get("tolerance", 1.0))
    out = Path(options["out"])
    out.mkdir(parents=True, exist_ok=True)
    try:
        curves = {run_name(run): curve(run, metric) for run in runs}
    except CsvLogError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    with (out / "curves.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "step", metric])
        for name, points in curves.items():
            writer.writerows([name, step, f"{value:.4f}"] for step, value in points)
    lines = [f"| run | steps | final {metric} | within ±{tolerance} of it since step | plateau (last 25%) |",
             "|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, points in curves.items():
        since, ok = plateau(points, tolerance)
        lines.append(f"| {name} | {points[-1][0]} | {points[-1][1]:.2f} | {since} | {'yes' if ok else 'no'} |")
        ax.plot([s for s, _ in points], [v for _, v in points], marker=".", label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)
    (out / "plateau.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out / 'curves.csv'}, {out / 'curves.png'}, {out / 'plateau.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
