"""Checks of a training config's values before anything is built or trained.

Each check names the option, the value and what it must be, so that a typo costs one line of
output instead of a traceback from deep inside a constructor (or a wrong run). `check_config` reads
the composed config only; `check_built` compares the built model with its data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ssltm.errors import ConfigError


def _int_at_least(low: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low
    return check


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _sizes(n: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, (list, tuple)) and len(value) == n and all(_positive_int(v) for v in value)
    return check


def _in_unit_interval(value: Any) -> bool:
    return isinstance(value, (int, float)) and 0.0 <= value <= 1.0


def _decay(value: Any) -> bool:
    return isinstance(value, (int, float)) and 0.0 <= value < 1.0


#: option -> (test, what the value must be); options absent from a config are not checked
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.stt.window": (_sizes(3), "3 window sizes (t, h, w), each an integer >= 1"),
    "model.stt.depth": (_non_negative_int, "an integer >= 0"),
    "model.stt.num_heads": (_positive_int, "an integer >= 1"),
    "model.gcc.k": (_positive_int, "an integer >= 1 (prototypes per class)"),
    "model.gcc.momentum": (_decay, "in [0, 1)"),
    "model.channels": (_positive_int, "an integer >= 1"),
    "method.confidence_threshold": (_in_unit_interval, "in [0, 1]"),
    "method.ema_decay": (_decay, "in [0, 1)"),
    "method.max_nonfinite_steps": (_positive_int, "an integer >= 1"),
    "data.clip.num_frames": (_positive_int, "an integer >= 1 (T, the frames of a clip)"),
    "data.clip.step": (_positive_int, "an integer >= 1"),
    "data.clip.min_distance": (_non_negative_int, "an integer >= 0 (frames)"),
    "data.clip.max_distance": (_non_negative_int, "an integer >= 0 (frames)"),
    "data.clip.eval_distance": (_non_negative_int, "an integer >= 0 (frames)"),
    "data.train_transform.crop_size": (_sizes(2), "2 sizes [height, width], each an integer >= 1"),
    "data.batch_size": (_positive_int, "an integer >= 1"),
    "data.eval_batch_size": (_positive_int, "an integer >= 1"),
    "data.steps_per_epoch": (_positive_int, "an integer >= 1"),
    "data.num_workers": (_non_negative_int, "an integer >= 0"),
}


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every option of `cfg` whose value cannot work."""
    problems = []
    for key, (test, must) in RULES.items():
        value = _value(cfg, key)
        if value is not None and not test(value):
            problems.append(f"{key}={value!r} must be {must}")
    lo, hi = _value(cfg, "data.clip.min_distance"), _value(cfg, "data.clip.max_distance")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        problems.append(f"data.clip.min_distance={lo} must not exceed data.clip.max_distance={hi}")
    window, frames = _value(cfg, "model.stt.window"), _value(cfg, "data.clip.num_frames")
    if (_value(cfg, "model.stt.enabled") and _sizes(3)(window) and _positive_int(frames)
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
