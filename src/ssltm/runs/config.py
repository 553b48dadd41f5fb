"""Composing the suite's Hydra configs outside `@hydra.main` (scripts and tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

#: the repository's conf/ folder
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def compose_config(
    config_name: str, overrides: list[str], output_dir: str | Path, return_hydra_config: bool = False
) -> DictConfig:
    """`conf/<config_name>.yaml` with overrides, writing into `output_dir` (which `@hydra.main`
    would otherwise make); with `return_hydra_config`, the `hydra` node (sweeper params) too."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
