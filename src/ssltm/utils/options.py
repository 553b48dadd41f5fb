"""The value rules of the suite's options, written once.

`runs/config_checks.check_config` applies every rule to a composed config before anything is
built (all problems in one message); a constructor applies the rule of its own argument with
`require` (so direct Python use is checked too). Each problem reads `<option>=<value> must be ...`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ssltm.errors import ConfigError


def _int_at_least(low: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low
    return check


positive_int, non_negative_int = _int_at_least(1), _int_at_least(0)


def sizes(n: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, (list, tuple)) and len(value) == n and all(positive_int(v) for v in value)
    return check


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unit_interval(value: Any) -> bool:
    return _number(value) and 0.0 <= value <= 1.0


def _decay(value: Any) -> bool:
    return _number(value) and 0.0 <= value < 1.0


def _positive_number(value: Any) -> bool:
    return _number(value) and value > 0


def one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value in choices), "one of " + ", ".join(choices)


LABEL_MODES = ("one_per_video", "all", "every_k")
VALIDATE_LEVELS = ("full", "layout", "off")

#: option -> (test, what the value must be); options absent from a config are not checked
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.stt.window": (sizes(3), "3 window sizes (t, h, w), each an integer >= 1"),
    "model.stt.depth": (non_negative_int, "an integer >= 0"),
    "model.stt.num_heads": (positive_int, "an integer >= 1"),
    "model.gcc.k": (positive_int, "an integer >= 1 (prototypes per class)"),
    "model.gcc.update": one_of("mse", "ema"),
    "model.gcc.momentum": (_decay, "in [0, 1)"),
    "model.context": one_of("none", "qfce", "rfce"),
    "model.channels": (positive_int, "an integer >= 1"),
    "method.confidence_threshold": (_unit_interval, "in [0, 1]"),
    "method.cutmix_p": (_unit_interval, "in [0, 1] (the probability of a CutMix box per clip)"),
    "method.fp_dropout": (_unit_interval, "in [0, 1] (channel dropout of the perturbed-feature stream)"),
    "method.strong_share": (_unit_interval, "in [0, 1] (the strong views' share of the unsupervised loss)"),
    "method.fp_at": one_of("head", "encoder"),
    "method.ema_decay": (_decay, "in [0, 1)"),
    "method.eval_network": one_of("teacher", "student"),
    "method.max_nonfinite_steps": (positive_int, "an integer >= 1"),
    "method.backbone_lr_scale": (_positive_number, "a number > 0 (the backbone's share of optimizer.lr)"),
    "optimizer.lr": (_positive_number, "a number > 0"),
    "inference.mode": one_of("whole", "slide"),
    "data.labels": one_of(*LABEL_MODES),
    "data.every_k": (positive_int, "an integer >= 1"),
    "data.validate": one_of(*VALIDATE_LEVELS),
    "data.clip.num_frames": (positive_int, "an integer >= 1 (T, the frames of a clip)"),
    "data.clip.step": (positive_int, "an integer >= 1"),
    "data.clip.min_distance": (non_negative_int, "an integer >= 0 (frames)"),
    "data.clip.max_distance": (non_negative_int, "an integer >= 0 (frames)"),
    "data.clip.eval_distance": (non_negative_int, "an integer >= 0 (frames)"),
    "data.train_transform.crop_size": (sizes(2), "2 sizes [height, width], each an integer >= 1"),
    "data.batch_size": (positive_int, "an integer >= 1"),
    "data.eval_batch_size": (positive_int, "an integer >= 1"),
    "data.steps_per_epoch": (positive_int, "an integer >= 1"),
    "data.num_workers": (non_negative_int, "an integer >= 0"),
}


def problem(option: str, value: Any) -> str | None:
    """What is wrong with `value` for `option` (RULES), or None."""
    test, must = RULES[option]
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = list(value)
    return None if test(value) else f"{option}={value!r} must be {must}"


def require(option: str, value: Any) -> None:
    """Raise ConfigError when `value` breaks the rule of `option`."""
    found = problem(option, value)
    if found:
        raise ConfigError(found)


def distance_problem(min_distance: Any, max_distance: Any) -> str | None:
    """The reference distance range of training: min must not exceed max."""
    if isinstance(min_distance, int) and isinstance(max_distance, int) and min_distance > max_distance:
        return f"data.clip.min_distance={min_distance} must not exceed data.clip.max_distance={max_distance}"
    return None
