"""OmegaConf resolvers of the suite's configs.

`${ssltm.num_classes:<source class>}` reads the class count from the data set's `DatasetInfo`
(the one place where classes are defined), e.g. `${ssltm.num_classes:${data.source._target_}}`.
`${ssltm.overrides:<prefix>[,<key>...]}` names a run by its command-line overrides, leaving out
the keys listed (`${ssltm.overrides:${task_name},seed}` groups the seeds of one setting): the
prefix alone without overrides or outside a Hydra run.
`${ssltm.if:<condition>,<then>,<else>}` picks a value by a boolean option, e.g. the backbone's
learning-rate share by `${backbone.pretrained}`.
`${ssltm.root:}` is the repository root: `SSLTM_ROOT` when set, else the folder that holds `src/`
(the suite runs from a checkout), so no entry point needs to set anything before Hydra starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.utils import get_class
from omegaconf import OmegaConf


def _root() -> str:
    return os.environ.get("SSLTM_ROOT") or str(Path(__file__).resolve().parents[3])


def _num_classes(source_target: str) -> int:
    return get_class(source_target).info.num_classes


def _overrides(prefix: str, *exclude: str) -> str:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return prefix
    kept = [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") not in exclude]
    return f"{prefix}/{','.join(sorted(kept))}" if kept else prefix


def _on_gpu(accelerator: str) -> bool:
    """Whether `trainer.accelerator` means CUDA GPUs here: switches GPU-only paths (SyncBN, fused
    optimisers, channels_last) on. Resolved where the run starts, not where it is composed."""
    import torch

    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def _if(condition, then, otherwise):
    if not isinstance(condition, bool):
        raise ValueError(f"ssltm.if: the condition must be true or false, got {condition!r}")
    return then if condition else otherwise


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("ssltm.if", _if, replace=True)
    OmegaConf.register_new_resolver("ssltm.root", _root, replace=True)
    OmegaConf.register_new_resolver("ssltm.num_classes", _num_classes, replace=True)
    OmegaConf.register_new_resolver("ssltm.overrides", _overrides, replace=True)
    OmegaConf.register_new_resolver("ssltm.on_gpu", _on_gpu, replace=True)
