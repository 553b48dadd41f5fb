"""Backbones: any timm model with `features_only`, returning NCHW feature maps at several strides.

Weights start random unless `checkpoint` names a local file (no downloads at run time). The
checkpoint is checked key by key against the architecture before loading, and a mismatch is
reported with the missing and unexpected keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import timm
import torch
from torch import nn

from ssltm.errors import BackboneCheckpointError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: a state dict, or one under `state_dict` / `model`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneCheckpointError(f"backbone.checkpoint: no file at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise BackboneCheckpointError(f"backbone.checkpoint: cannot read {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneCheckpointError(f"backbone.checkpoint: {path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _check_keys(name: str, state: dict, path: str, **kwargs) -> dict[str, torch.Tensor]:
    """Compare a checkpoint with timm's classification model `name`; return it completed with
    the classifier's (random) weights when only those are missing."""
    reference = timm.create_model(name, pretrained=False, **kwargs)
    filter_fn = getattr(sys.modules[type(reference).__module__], "checkpoint_filter_fn", None)
    filtered = filter_fn(dict(state), reference) if filter_fn else state
    expected = reference.state_dict()
    head = {f"{reference.default_cfg.get('classifier', 'fc')}."}
    missing = sorted(k for k in expected if k not in filtered)
    unexpected = sorted(k for k in filtered if k not in expected)
    missing_body = [k for k in missing if not any(k.startswith(h) for h in head)]
    if missing_body or unexpected:
        raise BackboneCheckpointError(
            f"backbone.checkpoint {path} does not fit {name}: "
            f"{len(missing_body)} missing keys {missing_body[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    return {**state, **{k: expected[k] for k in missing}}


class TimmBackbone(nn.Module):
    """A timm model's feature pyramid.

    Args:
        name: timm model name (e.g. resnet18, resnet101, swin_small_patch4_window7_224).
        out_indices: which feature levels to return (timm's indices).
        img_size: (H, W) of the input, for models that need it (Swin); ignored by CNNs.
        pretrained: timm's pretrained weights of `name`, downloaded from the Hugging Face hub (needs
            network access; the suite never downloads otherwise).
        checkpoint: path to local weights of the timm classification model `name` (checked key by
            key; takes precedence over `pretrained`).
        drop_path_rate: stochastic depth, for models that have it.
    """

    def __init__(
        self,
        name: str,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        img_size: tuple[int, int] | None = None,
        pretrained: bool = False,
        checkpoint: str | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        kwargs: dict = {}
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        if img_size is not None and _takes_img_size(name):
            kwargs["img_size"] = tuple(img_size)
            if name.startswith(("swin", "vit_", "deit", "eva")):  # masks / positions built per input size,
                kwargs["dynamic_img_size"] = True  # so that whole frames larger than the crops evaluate
            if name.startswith(("vit_", "deit", "eva")):
                kwargs["dynamic_img_pad"] = True  # any frame size: padded up to a multiple of the patch
        load: dict = {}
        if checkpoint:
            state = _check_keys(name, read_state_dict(checkpoint), checkpoint, **kwargs)
            load = dict(pretrained=True, pretrained_cfg_overlay=dict(state_dict=state))
        elif pretrained:  # timm's own weights from the Hugging Face hub: needs network access
            load = dict(pretrained=True)
        try:
            self.body = timm.create_model(
                name, features_only=True, out_indices=tuple(out_indices), **kwargs, **load
            )
        except (OSError, RuntimeError, ValueError) as err:
            if not (pretrained and not checkpoint):
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BackboneCheckpointError(
                f"backbone.pretrained=true: could not fetch the weights of {name} from the hub ({first}); "
                f"without network access, save them to a file and pass backbone.checkpoint=/path/to/{name}.pth"
            ) from None
        self.channels: list[int] = self.body.feature_info.channels()
        self.reductions: list[int] = self.body.feature_info.reduction()
        self.nhwc = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        self.name = name

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N 3 H W -> one N C_i H/r_i W/r_i map per level."""
        features = self.body(x)
        if self.nhwc:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]  # N C h w
        return features


def _takes_img_size(name: str) -> bool:
    """Whether the timm architecture fixes its input size at build time (ViT-like models)."""
    return any(key in name for key in ("swin", "vit", "deit", "beit", "eva", "maxvit", "coatnet"))
