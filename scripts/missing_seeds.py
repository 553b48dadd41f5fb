"""The seeds of one cell of a study that no finished run holds yet: what a lane script still runs.

    python scripts/missing_seeds.py <cell> <seeds> <runs folder> [<results.csv> ...]

A cell's runs are the multirun folders `<runs folder>/<cell>_seeds_<...>/` (a job is finished when
it wrote `metrics.json`; its seed is the `seed=` of its `.hydra/overrides.yaml`) and, once
aggregated and deleted, the rows of the given results.csv files whose folder starts with
`<cell>_seeds_` (status ok). Prints the asked-for seeds (comma-separated, e.g. `1,2,3`) that none
of them holds, in the asked order; an empty line when the cell is complete.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

SEED = re.compile(r"^- seed=(\d+)$", re.M)


def finished_seeds(cell: str, runs: Path, results: list[Path]) -> set[str]:
    done = set()
    for metrics in runs.glob(f"{cell}_seeds_*/*/metrics.json"):
        overrides = metrics.parent / ".hydra" / "overrides.yaml"
        if overrides.is_file():
            done |= set(SEED.findall(overrides.read_text()))
    for path in results:
        if path.is_file():
            with path.open(newline="") as f:
                done |= {row["seed"] for row in csv.DictReader(f)
                         if row.get("folder", "").startswith(f"{cell}_seeds_") and row.get("status") == "ok"}
    return done


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    cell, seeds, runs, *results = argv
    done = finished_seeds(cell, Path(runs), [Path(p) for p in results])
    print(",".join(s for s in seeds.split(",") if s and s not in done))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
