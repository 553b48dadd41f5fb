"""A trained network back from a checkpoint of `src/train.py`, with what it needs to see a video:
the data set's classes and colours, the clip sampler, the normalisation and the inference mode,
all from the run config stored in the checkpoint (no data folder is read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from torch import nn

from ssltm.data.clips import ClipSampler
from ssltm.data.info import DatasetInfo
from ssltm.data.transforms import ClipTransform
from ssltm.errors import CheckpointError
from ssltm.methods.inference import Inference
from ssltm.methods.streaming import StreamingSegmenter
from ssltm.utils.checkpoints import load_checkpoint, stored_run_config

NETWORKS = ("eval", "student", "teacher")


@dataclass
class TrainedNetwork:
    network: nn.Module
    info: DatasetInfo
    sampler: ClipSampler
    transform: ClipTransform
    inference: Inference
    path: Path

    def streaming(self, device: str | torch.device = "cpu", cache_features: bool = True) -> StreamingSegmenter:
        return StreamingSegmenter(self.network, self.sampler, self.transform, self.inference, device, cache_features)


def load_trained(path: str | Path, which: str = "eval") -> TrainedNetwork:
    """The network of checkpoint `path`: `eval` (the one evaluation used: Mean Teacher's teacher by
    default), `student` or `teacher` (Mean Teacher checkpoints only)."""
    if which not in NETWORKS:
        raise CheckpointError(f"network must be one of {', '.join(NETWORKS)}; got {which!r}")
    checkpoint = load_checkpoint(path)
    cfg = OmegaConf.create(stored_run_config(checkpoint, path))
    method = instantiate(cfg.method, model=instantiate(cfg.model))
    method.load_state_dict(checkpoint["state_dict"])
    if which == "eval":
        network = method.eval_network()
    elif which == "student":
        network = method.model
    elif hasattr(method, "teacher"):
        network = method.teacher
    else:
        raise CheckpointError(f"network=teacher: {path} was trained by {type(method).__name__}, which has no teacher")
    return TrainedNetwork(
        network=network.eval(),
        info=get_class(cfg.data.source._target_).info,
        sampler=instantiate(cfg.data.clip),
        transform=instantiate(cfg.data.eval_transform),
        inference=method.inference,
        path=Path(path),
    )
