"""Reading the suite's checkpoints, the one loader of `src/eval.py`, `src/predict.py` and the
iterative stages: the file, the run config stored in it (with the `_target_`s of older versions
moved to where the code lives now) and the trained network it holds, with what that network
needs to see a video (the data set's classes and colours, the clip sampler, the normalisation,
the inference mode), all from the stored config: no data folder is read.

A checkpoint is data, never code. The file is read with `weights_only=True`, and its stored
config, which names the classes to build, is checked before anything is built from it: every
`_target_` must be one of `ALLOWED_TARGETS` (what the suite's own configs name), and no value
may be an interpolation (`${...}` calls resolvers). A user who trains with classes of their own
trusts them by name: `allow_targets=[my_pkg.MyModel]` on the command line of eval / predict."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
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

#: what a stored data / model / method config may name: the classes of the suite's conf/ groups
#: data, backbone, model, method, optimizer, scheduler and inference (tests/test_stored_config.py
#: checks that this list covers them), and nothing else
ALLOWED_TARGETS = frozenset({
    "ssltm.data.camvid.CamVidSource",
    "ssltm.data.cityscapes.CityscapesSource",
    "ssltm.data.clips.ClipSampler",
    "ssltm.data.datamodule.VideoDataModule",
    "ssltm.data.synthetic.SyntheticSource",
    "ssltm.data.transforms.ClipPhotometric",
    "ssltm.data.transforms.ClipTransform",
    "ssltm.data.vspw.VSPWSource",
    "ssltm.inference.passes.Inference",
    "ssltm.methods.mean_teacher.MeanTeacherMethod",
    "ssltm.methods.pseudo_label.PseudoLabelMethod",
    "ssltm.methods.supervised.SupervisedMethod",
    "ssltm.methods.unimatch_v2.UniMatchV2Method",
    "ssltm.methods.weak_to_strong.FixMatchMethod",
    "ssltm.methods.weak_to_strong.UniMatchMethod",
    "ssltm.models.backbones.TimmBackbone",
    "ssltm.models.efficientnet_lite.EfficientNetLiteBackbone",
    "ssltm.models.baselines.deeplabv3plus.DeepLabV3Plus",
    "ssltm.models.baselines.etc.ETC",
    "ssltm.models.baselines.netwarp.NetWarp",
    "ssltm.models.baselines.ocrnet.OCRNet",
    "ssltm.models.baselines.pspnet.PSPNet",
    "ssltm.models.baselines.segmenter.Segmenter",
    "ssltm.models.baselines.tcb.TCB",
    "ssltm.models.baselines.upernet.UPerNet",
    "ssltm.models.per_frame.PerFrameSegmenter",
    "ssltm.models.ssltm.SSLTM",
    "ssltm.utils.schedulers.PolyLR",
    "torch.optim.AdamW",
    "torch.optim.SGD",
})

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


def stored_run_config(checkpoint: dict, path: str | Path, allow: Iterable[str] = ()) -> dict:
    """The data / model / method config that `src/train.py` stored in a loaded checkpoint, its
    `_target_`s brought up to date (`MOVED_TARGETS`) and checked (`check_stored_config`): a
    config that names anything but `ALLOWED_TARGETS` and `allow` is refused, nothing built."""
    run_config = checkpoint.get("ssltm_run_config")
    if not run_config:
        raise CheckpointError(f"ckpt_path: {path} has no stored run config (it was not written by src/train.py)")
    if not isinstance(run_config, dict):
        raise CheckpointError(f"ckpt_path: {path}: its stored run config is not a mapping")
    run_config = _moved(run_config)
    check_stored_config(run_config, path, allow)
    run_config.get("method", {}).pop("num_classes", None)  # older methods took it beside the model's
    return run_config


def check_stored_config(node, path: str | Path, allow: Iterable[str] = ()) -> None:
    """Refuse a stored config that could run code when built: a `_target_` (at any depth, in
    mappings and lists alike) outside `ALLOWED_TARGETS` and `allow`, a string with an
    interpolation, or a key or value that is not plain data."""
    allowed = ALLOWED_TARGETS | set(allow)

    def check(node, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                where = f"{key}.{name}" if key else str(name)
                if not isinstance(name, str):
                    raise CheckpointError(f"ckpt_path: {path}: stored config key {where!r} is not a string; refused")
                if name == "_target_" and (not isinstance(value, str) or value not in allowed):
                    raise CheckpointError(
                        f"ckpt_path: {path}: stored config {where} = {value!r} is not a class of this suite; refused, "
                        f"nothing of the file was built (trust a class of your own with allow_targets=[{value}])")
                check(value, where)
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                check(value, f"{key}[{i}]")
        elif isinstance(node, str):
            if "${" in node:
                raise CheckpointError(f"ckpt_path: {path}: stored config {key} = {node!r} is an interpolation; "
                                      "refused (the suite stores resolved values)")
        elif not (node is None or isinstance(node, bool | int | float)):
            raise CheckpointError(f"ckpt_path: {path}: stored config {key} holds a {type(node).__name__}, "
                                  "not plain data; refused")

    check(node, "")


def config_targets(node) -> set[str]:
    """Every `_target_` named in a (trusted) config tree: the classes a run was configured with."""
    if isinstance(node, dict):
        found = {node["_target_"]} if isinstance(node.get("_target_"), str) else set()
        return found.union(*(config_targets(v) for v in node.values()))
    if isinstance(node, list | tuple):
        return set().union(*(config_targets(v) for v in node))
    return set()


def _moved(node):
    if isinstance(node, dict):
        return {k: (MOVED_TARGETS.get(v, v) if k == "_target_" else _moved(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_moved(v) for v in node]
    return node


def restore_method(cfg: DictConfig, checkpoint: dict, path: str | Path) -> nn.Module:
    """The training method of `cfg` (its `method` and `model`) with the weights of `checkpoint`
    (student, teacher and GCC memory alike)."""
    broken = [k for k, v in checkpoint["state_dict"].items()
              if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(f"ckpt_path: {path} holds NaN or infinite weights in {len(broken)} tensor(s), "
                              f"e.g. {broken[0]}: a diverged or damaged run; nothing evaluated")
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


def load_trained(path: str | Path, which: str = "eval", allow: Iterable[str] = ()) -> TrainedNetwork:
    """The network of checkpoint `path`: `eval` (the one evaluation used: Mean Teacher's teacher by
    default), `student` or `teacher` (Mean Teacher checkpoints only). `allow`: further `_target_`s
    the user trusts (their own classes)."""
    if which not in NETWORKS:
        raise CheckpointError(f"network must be one of {', '.join(NETWORKS)}; got {which!r}")
    checkpoint = load_checkpoint(path)
    cfg = OmegaConf.create(stored_run_config(checkpoint, path, allow))
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
