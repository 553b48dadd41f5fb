"""DeepLabV3+ (Chen et al., ECCV 2018): ASPP on the deepest features, upsampled and fused with
the stride-4 features. The ASPP module is segmentation-models-pytorch's; the fusion resizes to the
stride-4 map whatever the backbone's last stride (timm backbones here are not dilated, so ASPP
sees stride 32 instead of the paper's 16)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import ImageSegmenter
from ssltm.models.heads import ConvNormAct


class DeepLabV3PlusDecoder(nn.Module):
    def __init__(self, in_channels: list[int], channels: int = 256, atrous_rates=(12, 24, 36)) -> None:
        super().__init__()
        self.aspp = nn.Sequential(
            ASPP(in_channels[-1], channels, tuple(atrous_rates), separable=True, dropout=0.5),
            ConvNormAct(channels, channels, 3),
        )
        self.low_level = ConvNormAct(in_channels[0], 48)  # the paper's 48 channels
        self.fuse = nn.Sequential(ConvNormAct(channels + 48, channels, 3), ConvNormAct(channels, channels, 3))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        low = self.low_level(features[0])  # N 48 H/4 W/4
        deep = F.interpolate(self.aspp(features[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([deep, low], 1))  # N C H/4 W/4


class DeepLabV3Plus(ImageSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256,
                 atrous_rates=(12, 24, 36), aux_level: int = -2, dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.decoder = DeepLabV3PlusDecoder(backbone.channels, channels, atrous_rates)
