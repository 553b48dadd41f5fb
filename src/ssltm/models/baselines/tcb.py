"""TCB, temporal context blending (Miao et al., CVPR 2021, the VSPW paper's baseline): the current
frame's features attend to the features of the previous frames, and the attended context is
blended into them.

Here: the clip's earlier T-1 frames give keys and values (average-pooled by `pool` to bound the
cost), the query frame's stride-8 neck features give the queries, one multi-head attention over
all their positions, and a learned blending weight that starts at 0 (the per-frame network at
initialisation). Simplified: VSPW's TCB builds on OCRNet's object context; this one blends plain
features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import NeckSegmenter, check_heads
from ssltm.models.heads import ConvNormAct, upsample_to
from ssltm.models.segmenter import SegmenterOutput


class TemporalContextBlending(nn.Module):
    def __init__(self, channels: int, num_heads: int = 8, pool: int = 2) -> None:
        super().__init__()
        self.pool = pool
        self.norm_q = nn.LayerNorm(channels)
        self.norm_kv = nn.LayerNorm(channels)
        self.attention = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.out = ConvNormAct(channels, channels)
        self.blend = nn.Parameter(torch.zeros(()))

    def forward(self, query: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """query: B C h w; previous: B P C h w (P earlier frames) -> B C h w."""
        b, c, h, w = query.shape
        if self.pool > 1:
            previous = F.avg_pool2d(previous.flatten(0, 1), self.pool, ceil_mode=True).unflatten(0, previous.shape[:2])
        q = self.norm_q(query.flatten(2).transpose(1, 2))  # B hw C
        kv = self.norm_kv(previous.permute(0, 1, 3, 4, 2).reshape(b, -1, c))  # B P*h'w' C
        context, _ = self.attention(q, kv, kv, need_weights=False)
        context = self.out(context.transpose(1, 2).reshape(b, c, h, w))
        return query + self.blend * context


class TCB(NeckSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256, num_heads: int = 8,
                 pool: int = 2, aux_level: int = -2, dropout: float = 0.1) -> None:
        check_heads(channels, num_heads)
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.blending = TemporalContextBlending(channels, num_heads, pool)

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        """frames: B T 3 H W (the query last); with T = 1 there is no context and TCB is per-frame."""
        B, T = frames.shape[:2]
        size = tuple(frames.shape[-2:])
        pyramid = self.backbone(frames.flatten(0, 1))  # B*T levels
        features = self.decode(pyramid, size).unflatten(0, (B, T))  # B T C h w
        fused = self.blending(features[:, -1], features[:, :-1]) if T > 1 else features[:, -1]
        aux = self.aux_head(pyramid[self.aux_level].unflatten(0, (B, T))[:, -1])
        return SegmenterOutput(upsample_to(self.head(fused), size), upsample_to(aux, size))
