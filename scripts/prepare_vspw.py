"""Verify an extracted VSPW download (VSPW_480p) before training on it. Downloads nothing.

    python scripts/prepare_vspw.py data.root=/path/to/VSPW_480p [splits=[train,val,test]] [level=full]

Checks what the data module checks before training, at `level=full` by default (every frame and
mask decoded once, so that training can run with the cheaper `data.validate=layout`), plus:
the class list in VSPW's label_num_dic_final.json (when present) against the suite's, and video
folders under data/ that no split file lists. VSPW needs no index beyond its own split files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from check_data import check, parse

from ssltm.data.vspw import VSPW_CLASSES, read_split_file


def class_list_problems(root: Path) -> list[str]:
    """Differences between VSPW's label_num_dic_final.json (name -> raw value) and VSPW_CLASSES."""
    path = root / "label_num_dic_final.json"
    if not path.is_file():
        return []
    table = json.loads(path.read_text())
    return [
        f"{path}: raw value {raw} is {name!r} there, {VSPW_CLASSES[raw - 1]!r} here"
        for name, raw in table.items()
        if 1 <= int(raw) <= len(VSPW_CLASSES) and VSPW_CLASSES[int(raw) - 1] != name
    ]


def main(argv: list[str]) -> int:
    overrides, splits, level, out = parse(["data=vspw", *argv], ["train", "val", "test"])
    root = Path(next((a.split("=", 1)[1] for a in overrides if a.startswith("data.root=")), "."))
    splits = [s for s in splits if s != "test" or (root / "test.txt").is_file()]
    problems = class_list_problems(root)
    if problems:
        print("error: the class list differs from VSPW's:\n  " + "\n  ".join(problems[:10]), file=sys.stderr)
        return 1
    if (root / "data").is_dir():
        listed = {v for s in splits if (root / f"{s}.txt").is_file() for v in read_split_file(root / f"{s}.txt")}
        stray = sorted(p.name for p in (root / "data").iterdir() if p.is_dir() and p.name not in listed)
        if stray:
            print(f"note: {len(stray)} video folder(s) under {root / 'data'} are in no split file, e.g. {stray[:3]}")
    return check(overrides, splits, level, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
