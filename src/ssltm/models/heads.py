"""Necks and heads shared by the suite's models.

`FusionNeck` is SegFormer's all-MLP decoder applied to a CNN or Swin feature pyramid: each level
is projected to C channels, resized to the output stride, concatenated and fused. `ClassifierHead`
turns features into class logits; `AuxHead` is the auxiliary head of PSPNet-style deep supervision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvNormAct(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class FusionNeck(nn.Module):
    """Feature pyramid -> one C-channel map at `out_stride`.

    Args:
        in_channels: channels of each pyramid level.
        reductions: stride of each pyramid level.
        channels: C, the output channels.
        out_stride: stride of the output map (8 in DESIGN.md).
    """

    def __init__(
        self, in_channels: list[int], reductions: list[int], channels: int = 256, out_stride: int = 8
    ) -> None:
        super().__init__()
        self.reductions = list(reductions)
        self.out_stride = out_stride
        self.project = nn.ModuleList(ConvNormAct(c, channels) for c in in_channels)
        self.fuse = ConvNormAct(channels * len(in_channels), channels, kernel_size=3)

    def forward(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """features: one N C_i h_i w_i per level -> N C H/s W/s (s = out_stride, rounded up)."""
        size = (-(-image_size[0] // self.out_stride), -(-image_size[1] // self.out_stride))
        resized = [
            F.interpolate(proj(f), size=size, mode="bilinear", align_corners=False)
            for proj, f in zip(self.project, features, strict=True)
        ]
        return self.fuse(torch.cat(resized, dim=1))  # N C H/s W/s


class ClassifierHead(nn.Module):
    """Dropout + 1x1 convolution to class logits."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(x))


class AuxHead(nn.Sequential):
    """3x3 conv + classifier on an intermediate feature level (auxiliary loss, coarse probabilities)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 128, dropout: float = 0.1):
        super().__init__(ConvNormAct(in_channels, channels, 3), ClassifierHead(channels, num_classes, dropout))


def upsample_to(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of N K h w logits to `size`."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
