"""Verify an extracted Cityscapes download before training on it. Downloads nothing.

    python scripts/prepare_cityscapes.py data.root=/path/to/cityscapes [splits=[train,val]] [level=full]

Expects leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip extracted into data.root, and, for
video training, leftImg8bit_sequence_trainvaltest.zip (the 30-frame snippets). Without the
snippets it checks the labelled frames alone and says how to train on them
(data.source.sequence=false data.clip.num_frames=1). Runs the data module's checks at `level=full`
by default (every file decoded once, so that training can use `data.validate=layout`). Label ids
are mapped to train ids when read (cityscapesscripts' table), so no *_labelTrainIds.png is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from check_data import check, parse


def main(argv: list[str]) -> int:
    overrides, splits, level, out = parse(["data=cityscapes", *argv], ["train", "val"])
    root = Path(next((a.split("=", 1)[1] for a in overrides if a.startswith("data.root=")), "."))
    sequence_given = any(a.startswith("data.source.sequence=") for a in overrides)
    if not sequence_given and not (root / "leftImg8bit_sequence").is_dir():
        print(f"note: no {root / 'leftImg8bit_sequence'}: checking the labelled frames alone. Train on them with "
              "data.source.sequence=false data.clip.num_frames=1, or extract leftImg8bit_sequence_trainvaltest.zip")
        overrides += ["data.source.sequence=false", "data.clip.num_frames=1"]
    return check(overrides, splits, level, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
