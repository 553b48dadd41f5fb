"""Check a data set's files and print a summary: videos, frames, labelled frames, class histogram.

    python scripts/check_data.py data=camvid data.root=/path/to/camvid [splits=[train,val]] [level=full]

Runs the checks of the data module (src/ssltm/data/validate.py) at `level` (default `full`: every
frame and mask decoded) and stops at the first split with defects, with a message that names the
offending files. Exit code 0 when every split is sound, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.data.validate import SplitReport, check_split
from ssltm.errors import DataError
from ssltm.runs.config import compose_config


def summary_table(reports: list[SplitReport], classes: list[str]) -> Table:
    table = Table(title=f"{reports[0].name}: {len(classes)} classes")
    table.add_column("")
    for report in reports:
        table.add_column(report.split, justify="right")
    for key in ("sequences", "videos", "frames", "annotated"):
        table.add_row(key, *[str(getattr(r, key)) for r in reports])
    if all(r.histogram is not None for r in reports):
        for i, name in enumerate([*classes, "(ignored)"]):
            table.add_row(f"pixels {name}", *[f"{r.histogram[i]:,}" for r in reports])
    return table


def check(overrides: list[str], splits: list[str], level: str = "full", out: str | None = None) -> int:
    """Check `splits` of the data set that `overrides` configure; print the summary; 0 if sound."""
    cfg = compose_config("train", overrides, ROOT / "outputs")
    console = Console()
    try:
        source = instantiate(cfg.data.source)
        clip = instantiate(cfg.data.clip)
        reports = [check_split(source, split, clip, level)[1] for split in splits]
    except DataError as err:
        console.print(f"[red]error:[/red] {err}", soft_wrap=True)
        return 1
    console.print(summary_table(reports, list(source.info.classes)))
    if out:
        rows = {r.split: {**{k: getattr(r, k) for k in ("videos", "frames", "annotated", "sequences")},
                          "histogram": None if r.histogram is None else r.histogram.tolist()} for r in reports}
        Path(out).write_text(json.dumps({"data": source.info.name, "level": level, "splits": rows}, indent=2))
        console.print(f"summary: {out}")
    print(f"classes={source.info.num_classes} " + " ".join(f"{r.split}_frames={r.frames}" for r in reports))
    return 0


def parse(argv: list[str], splits: list[str]) -> tuple[list[str], list[str], str, str | None]:
    """Split the script's own options (splits=, level=, out=) from the Hydra overrides."""
    level, out, overrides = "full", None, []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "splits":
            splits = value.strip("[]").split(",")
        elif key == "level":
            level = value
        elif key == "out":
            out = value
        else:
            overrides.append(arg)
    return overrides, splits, level, out


def main(argv: list[str]) -> int:
    overrides, splits, level, out = parse(argv, ["train", "val"])
    return check(overrides, splits, level, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
