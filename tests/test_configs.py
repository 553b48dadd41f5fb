"""Every config option composes, resolves and names its options clearly when misspelled."""

from __future__ import annotations

import pytest
from conftest import CONF, SMALL, compose_config
from hydra.errors import MissingConfigException
from hydra.utils import get_class
from omegaconf import OmegaConf

GROUPS = ["data", "backbone", "model", "method", "optimizer", "scheduler", "callbacks", "logger",
          "trainer", "debug", "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml")) if not p.stem.startswith("_")]


def test_every_config_group_of_the_suite_has_options():
    for group in ["model", "backbone", "method", "data", "trainer", "logger", "experiment"]:
        assert any(g == group for g, _ in OPTIONS), f"conf/{group}/ has no option"


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_option_composes_and_resolves(group, option, tmp_path):
    # SMALL shrinks the synthetic set; other data sets compose with their own defaults
    cfg = compose_config("train", [f"{group}={option}"], tmp_path)
    if cfg.data.source._target_.endswith("SyntheticSource"):
        cfg = compose_config("train", [*SMALL, f"{group}={option}"], tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    source = get_class(container["data"]["source"]["_target_"])
    assert container["model"]["num_classes"] == source.info.num_classes
    if group in ("data", "backbone", "model", "method", "trainer"):
        assert "_target_" in container[group]


def test_eval_config_composes_without_model_and_only_the_data_split(tmp_path):
    cfg = compose_config("eval", ["ckpt_path=x.ckpt"], tmp_path)
    assert cfg.get("model") is None and cfg.data.split == "val" and "_target_" not in cfg.data


def test_misspelled_group_option_lists_the_available_options(tmp_path):
    with pytest.raises(MissingConfigException) as err:
        compose_config("train", ["model=per_fram"], tmp_path)
    assert "per_frame" in str(err.value)
