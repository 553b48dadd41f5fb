"""Reading the suite's checkpoints, the one loader of `src/eval.py`, `src/predict.py` and the
iterative stages: the file, the run config stored in it (with the `_target_`s of older versions
moved to where the code lives now) and the trained network it holds, with what that network
needs to see a video (the data set's classes and colours, the clip sampler, the normalisation,
the inference mode), all from the stored config: no data folder is read."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ssltm.data.clips import ClipSampler
from ssltm.data.info import DatasetInfo
from ssltm.data.transforms import ClipTransform
from ssltm.errors import CheckpointError
from ssltm.inference.passes import Inference
from ssltm.inference.streaming import StreamingSegmenter

NETWORKS = ("eval", "student", "teacher")

#: `_target_`s that moved since checkpoints were first written: old path -> where the code is now
MOVED_TARGETS = {
    "ssltm.methods.inference.Inference": "ssltm.inference.passes.Inference",
    "ssltm.methods.iterative.PseudoLabelMethod": "ssltm.methods.pseudo_label.PseudoLabelMethod",
}


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint file at `path`, read safely: tensors and plain data only
    (`weights_only=True`), so that loading a file someone shared can never run code from it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path: no file at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # an object that only arbitrary unpickling could build
        refused = str(err).strip().splitlines()
        detail = next((line.strip() for line in refused if "GLOBAL" in line or "Unsupported" in line), "")
        raise CheckpointError(
            f"ckpt_path: {path} holds objects other than tensors and plain data; refused, since "
            f"loading them could run code from the file ({detail or 'not a weights-only file'})"
        ) from err
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"ckpt_path: cannot read {path} as a checkpoint: {first}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"ckpt_path: {path} is not a Lightning checkpoint")
    return checkpoint


def stored_run_config(checkpoint: dict, path: str | Path) -> dict:
    """The data / model / method config that `src/train.py` stored in a loaded checkpoint, its
    `_target_`s brought up to date (`MOVED_TARGETS`)."""
    run_config = checkpoint.get("ssltm_run_config")
    if not run_config:
        raise CheckpointError(f"ckpt_path: {path} has no stored run config (it was not written by src/train.py)")
    run_config = _moved(run_config)
    run_config.get("method", {}).pop("num_classes", None)  # older methods took it beside the model's
    return run_config


def _moved(node):
    if isinstance(node, dict):
        return {k: (MOVED_TARGETS.get(v, v) if k == "_target_" else _moved(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_moved(v) for v in node]
    return node


def restore_method(cfg: DictConfig, checkpoint: dict, path: str | Path) -> nn.Module:
    """The training method of `cfg` (its `method` and `model`) with the weights of `checkpoint`
    (student, teacher and GCC memory alike)."""
    method = instantiate(cfg.method, model=instantiate(cfg.model))
    try:
        method.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # another architecture or class count than the checkpoint's
        first = str(err).strip().splitlines()
        raise CheckpointError(f"ckpt_path: {path} does not fit the configured model: "
                              f"{' '.join(line.strip() for line in first[:3])}") from err
    return method


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
    method = restore_method(cfg, checkpoint, path)
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
