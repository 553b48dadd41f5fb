"""Per-frame baseline: a timm backbone and a light fusion head on the query frame alone.

It sees the same samples as the video models (`frames`, `reference`) but uses only the query
frame, `frames[:, -1]`: the image-based lower bound that temporal models must beat.
"""

from __future__ import annotations

import torch
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.heads import AuxHead, ClassifierHead, FusionNeck, upsample_to
from ssltm.models.segmenter import SegmenterOutput


class PerFrameSegmenter(nn.Module):
    """Args:
    backbone: the feature pyramid.
    num_classes: output classes.
    channels: width of the fusion neck.
    aux_level: pyramid level that feeds the auxiliary head (-2: the stride-16 level).
    dropout: before the classifiers.
    """

    def __init__(
        self,
        backbone: TimmBackbone,
        num_classes: int,
        channels: int = 128,
        aux_level: int = -2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.neck = FusionNeck(backbone.channels, backbone.reductions, channels)
        self.head = ClassifierHead(channels, num_classes, dropout)
        self.aux_level = aux_level
        self.aux_head = AuxHead(backbone.channels[aux_level], num_classes, channels // 2, dropout)

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        """frames: B T 3 H W, reference: B 3 H W (unused) -> logits and aux_logits, B K H W.

        `memory_labels` is accepted for a uniform interface and unused (no memory here)."""
        query = frames[:, -1]  # B 3 H W
        size = tuple(query.shape[-2:])
        features = self.backbone(query)
        logits = self.head(self.neck(features, size))  # B K H/8 W/8
        aux = self.aux_head(features[self.aux_level])
        return SegmenterOutput(upsample_to(logits, size), upsample_to(aux, size))
