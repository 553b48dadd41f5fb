"""NetWarp (Gadde et al., ICCV 2017): the previous frame's intermediate representation, warped to
the current frame by optical flow, is combined with the current one by learned per-channel weights.

As in the paper: the flow (current -> previous frame) is refined by a small FlowCNN that also sees
both frames and their difference ("transformed flow"), and the combination starts as the identity
(weights 1 for the current frame, 0 for the warped one). Simplified: one NetWarp module, on the
all-MLP neck's stride-8 features (the paper inserts several, inside the network); the flow
estimator is torchvision's RAFT, frozen, from random or local weights (`model.flow.checkpoint`),
or zero flow (`model.flow.source=zero`).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import NeckSegmenter
from ssltm.models.baselines.flow import FlowEstimator, flow_warp, resize_flow
from ssltm.models.heads import upsample_to
from ssltm.models.segmenter import SegmenterOutput


class FlowCNN(nn.Module):
    """flow N 2 H W, frames N 3 H W -> the transformed flow: flow + a learned residual (zero at start)."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 + 3 * 3, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, flow: torch.Tensor, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return flow + self.net(torch.cat([flow, current, previous, current - previous], 1))


class NetWarp(NeckSegmenter):
    """Args (beyond the per-frame network's): flow: `FlowEstimator` options (`source`, `checkpoint`,
    `num_updates`, `trainable`)."""

    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256, flow: dict | None = None,
                 aux_level: int = -2, dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.flow = FlowEstimator(**(flow or {}))
        self.flow_cnn = FlowCNN()
        self.current_weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.warped_weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        """frames: B T 3 H W; the query is the last frame and the previous one frames[:, -2]
        (the query itself when T = 1)."""
        current, previous = frames[:, -1], frames[:, -2 if frames.shape[1] > 1 else -1]
        size = tuple(current.shape[-2:])
        pyramid = self.backbone(torch.cat([current, previous]))  # 2B levels
        features = self.decode(pyramid, size)  # 2B C h w
        now, before = features.chunk(2)
        flow = self.flow_cnn(self.flow(current, previous), current, previous)  # B 2 H W, current -> previous
        warped = flow_warp(before, resize_flow(flow, tuple(now.shape[-2:])))
        fused = self.current_weight * now + self.warped_weight * warped
        aux = self.aux_head(pyramid[self.aux_level].chunk(2)[0])
        return SegmenterOutput(upsample_to(self.head(fused), size), upsample_to(aux, size))
