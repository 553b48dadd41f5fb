"""Checks of a training config's values before anything is built or trained.

Each check names the option, the value and what it must be, so that a typo costs one line of
output instead of a traceback from deep inside a constructor (or a wrong run). `check_config` reads
the composed config only (the value rules are `utils/options.RULES`, which the constructors apply
to their own arguments too); `check_built` compares the built model with its data.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ssltm.errors import ConfigError
from ssltm.utils.options import RULES, distance_problem, positive_int, problem, sizes


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every option of `cfg` whose value cannot work."""
    problems = []
    for key in RULES:
        value = _value(cfg, key)
        found = problem(key, value) if value is not None else None
        if found:
            problems.append(found)
    found = distance_problem(_value(cfg, "data.clip.min_distance"), _value(cfg, "data.clip.max_distance"))
    if found:
        problems.append(found)
    window, frames = _value(cfg, "model.stt.window"), _value(cfg, "data.clip.num_frames")
    if (_value(cfg, "model.stt.enabled") and sizes(3)(window) and positive_int(frames)
            and window[0] < frames):
        problems.append(
            f"model.stt.window={window} has t={window[0]} < data.clip.num_frames={frames}: STT has "
            "no shifted windows, so the query frame would never attend to the frames outside its "
            f"window; use t >= {frames} (the window shrinks to the clip)"
        )
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def check_built(model: Any, num_classes: int, crop_size: Any) -> None:
    """The model against its data: as many classes as the data set, a crop the backbone can take."""
    model_classes = getattr(model, "num_classes", None)
    if model_classes is not None and model_classes != num_classes:
        raise ConfigError(
            f"model.num_classes={model_classes} but the data set has {num_classes} classes; "
            "leave model.num_classes at its default (it follows data)"
        )
    reductions = getattr(getattr(model, "backbone", None), "reductions", None)
    if reductions and crop_size is not None:
        stride = max(reductions)
        if min(crop_size) < stride:
            raise ConfigError(
                f"data.train_transform.crop_size={list(crop_size)} is smaller than the backbone's "
                f"output stride {stride}; each side must be at least {stride} pixels"
            )
