"""OCRNet (Yuan et al., ECCV 2020): object-contextual representations. Soft object regions (one
map per class, supervised by the auxiliary loss) pool the pixel features into one representation
per class; each pixel attends over these class representations, and the result is concatenated
with the pixel features. Simplified: the pixel features are the suite's all-MLP fusion of the
pyramid at stride 8 (the paper: HRNet's concatenated levels at stride 4)."""

from __future__ import annotations

import torch
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import ImageSegmenter
from ssltm.models.heads import ClassifierHead, ConvNormAct, FusionNeck, upsample_to
from ssltm.models.segmenter import SegmenterOutput


class ObjectContext(nn.Module):
    """Pixels N C h w and soft regions N K h w -> object-contextual features N C h w."""

    def __init__(self, channels: int, key_channels: int) -> None:
        super().__init__()
        self.query = nn.Sequential(ConvNormAct(channels, key_channels), ConvNormAct(key_channels, key_channels))
        self.key = nn.Sequential(ConvNormAct(channels, key_channels), ConvNormAct(key_channels, key_channels))
        self.value = ConvNormAct(channels, key_channels)
        self.out = ConvNormAct(key_channels, channels)
        self.fuse = ConvNormAct(2 * channels, channels)
        self.scale = key_channels**-0.5

    def forward(self, pixels: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        n, c, h, w = pixels.shape
        weights = regions.flatten(2).softmax(-1)  # N K hw: each class's spatial distribution
        objects = (weights @ pixels.flatten(2).transpose(1, 2)).transpose(1, 2)[..., None]  # N C K 1
        q = self.query(pixels).flatten(2).transpose(1, 2)  # N hw D
        k = self.key(objects).flatten(2)  # N D K
        v = self.value(objects).flatten(2).transpose(1, 2)  # N K D
        context = ((q @ k) * self.scale).softmax(-1) @ v  # N hw D
        context = self.out(context.transpose(1, 2).reshape(n, -1, h, w))  # N C h w
        return self.fuse(torch.cat([context, pixels], 1))


class OCRNet(ImageSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 512, key_channels: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level=-1, dropout=dropout)
        del self.aux_head  # the soft object regions are the auxiliary output
        self.decoder = FusionNeck(backbone.channels, backbone.reductions, channels)
        self.regions = nn.Sequential(ConvNormAct(channels, channels), ClassifierHead(channels, num_classes, 0.0))
        self.context = ObjectContext(channels, key_channels)

    def segment(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pixels = self.decoder(self.backbone(images), tuple(images.shape[-2:]))  # N C H/8 W/8
        regions = self.regions(pixels)  # N K H/8 W/8
        features = self.context(pixels, regions)
        return features, self.head(features), regions

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        query = frames[:, -1]
        size = tuple(query.shape[-2:])
        _, logits, regions = self.segment(query)
        return SegmenterOutput(upsample_to(logits, size), upsample_to(regions, size))
