"""ETC (Liu et al., ECCV 2020, "Efficient Semantic Video Segmentation with Per-frame Inference"):
a per-frame network trained with a temporal consistency loss, so that inference stays per frame.

In training the network also segments the previous frame; its class probabilities, warped to the
current frame by optical flow, should match the current ones where the warp is reliable:
    L_tc = mean over pixels of O * || p_t - warp(p_{t-1}) ||^2,  O = exp(-alpha * || I_t - warp(I_{t-1}) ||^2)
(O down-weights occluded and badly warped pixels). Simplified: the paper's pair-wise and
temporal knowledge distillation from a large teacher is left out; the flow comes from a frozen
RAFT (random or local weights) or is zero (`model.flow.source=zero`).
"""

from __future__ import annotations

import torch

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import NeckSegmenter
from ssltm.models.baselines.flow import FlowEstimator, flow_warp
from ssltm.models.heads import upsample_to
from ssltm.models.segmenter import SegmenterOutput


def temporal_consistency_loss(probs: torch.Tensor, previous_probs: torch.Tensor, flow: torch.Tensor,
                              image: torch.Tensor, previous_image: torch.Tensor, alpha: float = 50.0) -> torch.Tensor:
    """probs, previous_probs: N K H W; flow: N 2 H W (current -> previous); images N 3 H W."""
    warped = flow_warp(previous_probs, flow)
    with torch.no_grad():
        error = (image - flow_warp(previous_image, flow)).pow(2).mean(1, keepdim=True)  # N 1 H W
        reliable = torch.exp(-alpha * error)
    return (reliable * (probs - warped).pow(2).sum(1, keepdim=True)).mean()


class ETC(NeckSegmenter):
    """Args (beyond the per-frame network's): flow: `FlowEstimator` options; loss_weight: of L_tc;
    alpha: how fast the reliability falls with the warping error (images as served, normalised)."""

    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256, flow: dict | None = None,
                 loss_weight: float = 1.0, alpha: float = 50.0, aux_level: int = -2, dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.flow = FlowEstimator(**(flow or {}))
        self.loss_weight = loss_weight
        self.alpha = alpha

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        current = frames[:, -1]
        size = tuple(current.shape[-2:])
        if not (self.training and frames.shape[1] > 1 and self.loss_weight > 0):
            _, logits, aux = self.segment(current)
            return SegmenterOutput(upsample_to(logits, size), upsample_to(aux, size))
        previous = frames[:, -2]
        _, logits, aux = self.segment(torch.cat([current, previous]))
        logits = upsample_to(logits, size)
        now, before = logits.chunk(2)
        flow = self.flow(current, previous)
        loss = temporal_consistency_loss(now.softmax(1), before.softmax(1), flow, current, previous, self.alpha)
        return SegmenterOutput(now, upsample_to(aux.chunk(2)[0], size),
                               {"temporal": self.loss_weight * loss})
