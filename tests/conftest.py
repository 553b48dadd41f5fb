"""Shared fixtures: configs composed once with Hydra's compose API, then copied per test.

The test configs shrink the synthetic data and use the tiny backbone so that a whole training
run takes seconds on a CPU.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"
os.environ.setdefault("WANDB_MODE", "offline")
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import ssltm  # noqa: E402  (registers config resolvers)
import ssltm.runs.config  # noqa: E402

#: overrides that make every run small: tiny backbone, tiny synthetic videos, no workers
SMALL = [
    "backbone=tiny",
    "model.channels=32",
    "data.source.train_videos=4",
    "data.source.val_videos=2",
    "data.source.test_videos=2",
    "data.source.num_frames=20",
    "data.source.height=48",
    "data.source.width=64",
    "data.train_transform.crop_size=[48,64]",
    "data.batch_size=2",
    "data.eval_batch_size=4",
    "data.num_workers=0",
    "data.steps_per_epoch=2",
    "trainer.max_epochs=1",
    "logger=csv",
]


def compose_config(config_name: str, overrides: list[str], output_dir: Path, **kwargs) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with overrides; all outputs go to `output_dir`."""
    cfg = ssltm.runs.config.compose_config(config_name, overrides, output_dir, **kwargs)
    with open_dict(cfg):
        cfg.paths.log_dir = str(output_dir)
    return cfg


@pytest.fixture
def train_cfg_factory(tmp_path):
    """`make(*overrides)` -> a small training config writing into this test's tmp_path."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config("train", [*SMALL, *overrides], output_dir or tmp_path)

    return make


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs ../shared beside the repository ({SHARED} is absent)")
    return SHARED
