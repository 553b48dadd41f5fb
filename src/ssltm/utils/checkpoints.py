"""Reading the suite's checkpoints: the run config stored in them and the networks they hold."""

from __future__ import annotations

from pathlib import Path

import torch

from ssltm.errors import CheckpointError


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path: no file at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise CheckpointError(f"ckpt_path: cannot read {path} as a checkpoint: {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"ckpt_path: {path} is not a Lightning checkpoint")
    return checkpoint


def stored_run_config(checkpoint: dict, path: str | Path) -> dict:
    """The data / model / method config that `src/train.py` stored in a loaded checkpoint."""
    run_config = checkpoint.get("ssltm_run_config")
    if not run_config:
        raise CheckpointError(f"ckpt_path: {path} has no stored run config (it was not written by src/train.py)")
    return run_config


def load_run_config(path: str | Path) -> dict:
    """The run config stored in the checkpoint file at `path`."""
    return stored_run_config(load_checkpoint(path), path)
