"""The speed switches of `performance` in conf/train.yaml, applied to a built model."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from ssltm.errors import ConfigError

MATMUL_PRECISIONS = ("highest", "high", "medium")


def apply_performance(model: nn.Module, cfg: DictConfig | None) -> nn.Module:
    """channels_last memory format, torch.compile of the backbone, float32 matmul precision.

    The backbone is compiled in place (`nn.Module.compile`), so parameter names, and with them
    checkpoints, are those of the plain model.
    """
    if not cfg:
        return model
    precision = cfg.get("matmul_precision", "highest")
    if precision not in MATMUL_PRECISIONS:
        raise ConfigError(f"performance.matmul_precision={precision!r} must be one of {MATMUL_PRECISIONS}")
    torch.set_float32_matmul_precision(precision)
    if cfg.get("channels_last"):
        model.to(memory_format=torch.channels_last)
    if cfg.get("compile"):
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise ConfigError(f"performance.compile=true: {type(model).__name__} has no `backbone` to compile")
        backbone.compile(dynamic=True)  # frames of any size in evaluation
    return model
