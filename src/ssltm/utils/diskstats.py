"""What a run wrote to disk, measured from the files themselves, and small JSON helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path


def disk_usage(folder: str | Path) -> dict[str, int]:
    """Bytes of the files under `folder` by kind: checkpoints (*.ckpt), pseudo_labels (*.png in a
    folder whose name contains "label", `folder` itself included), other (logs, configs,
    metrics) and their total."""
    usage = {"checkpoints": 0, "pseudo_labels": 0, "other": 0}
    folder = Path(folder)
    if folder.is_dir():
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            size = path.stat().st_size
            if path.suffix == ".ckpt":
                usage["checkpoints"] += size
            elif path.suffix == ".png" and any("label" in part for part in path.relative_to(folder.parent).parts[:-1]):
                usage["pseudo_labels"] += size
            else:
                usage["other"] += size
    usage["total"] = sum(usage.values())
    return usage


def write_json(path: str | Path, data: dict) -> Path:
    """Write JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path
