"""SSLTM: short-term STT + long-term RFCE/QFCE + Global Category Context on a timm backbone.

Lao et al., "Simultaneously Short- and Long-Term Temporal Modeling for Semi-Supervised Video
Semantic Segmentation", CVPR 2023. The main paper's code is not public; this follows the design
of `paper/DESIGN.md`, every part switchable for the ablations:

1. the backbone runs on the T clip frames and the reference frame (shared weights); a fusion neck
   gives C-channel features at stride 8;
2. STT (`stt.enabled`) mixes the T frames' features; the query frame's slice goes on;
3. an auxiliary head gives coarse class probabilities of the query and the reference frame;
4. context (`context`): none, QFCE (the query's class context) or RFCE (the reference frame's and
   the query's);
5. GCC (`gcc.enabled`): pixels attend over num_classes x K global prototypes; the memory is updated
   from `memory_labels` (ground truth or confident pseudo-labels, given by the training method);
6. the query features and the enhanced ones are concatenated, fused and classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.errors import ConfigError
from ssltm.models.backbones import TimmBackbone
from ssltm.models.context import FrameContextEnhancement
from ssltm.models.gcc import GlobalCategoryContext
from ssltm.models.heads import AuxHead, ClassifierHead, ConvNormAct, FusionNeck, upsample_to
from ssltm.models.segmenter import FramesNeeded, SegmenterOutput, select_frames
from ssltm.models.stt import SpatialTemporalTransformer
from ssltm.utils.options import require


@dataclass
class STTConfig:
    enabled: bool = True
    depth: int = 2  # STT blocks
    num_heads: int = 8
    window: tuple[int, int, int] = (4, 8, 8)  # (t, h, w): frames x feature cells
    mlp_ratio: float = 4.0  # Mix-FFN hidden width / C
    drop_path_rate: float = 0.1
    rel_pos_bias: bool = False


@dataclass
class GCCConfig:
    enabled: bool = True
    k: int = 3  # prototypes per class (the paper's best)
    update: str = "mse"  # mse | ema
    momentum: float = 0.99  # m of the ema update
    loss_weight: float = 1.0  # weight of the mse update's loss
    seed: int | None = 0  # seed of a new class's starting pixels (the run's seed)


def _config(kind: type, name: str, values: Mapping | None):
    values = dict(values or {})
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"model.{name}: unknown option(s) {unknown}; known: {sorted(known)}")
    if "window" in values:
        values["window"] = tuple(values["window"])
        require("model.stt.window", values["window"])
    return kind(**values)


class SSLTM(nn.Module):
    """Args:
    backbone: the feature pyramid (shared by all frames).
    num_classes: output classes.
    channels: C of the neck, STT, context and GCC features.
    stt: STTConfig fields (`enabled`, `depth`, `num_heads`, `window`, ...).
    context: `none`, `qfce` or `rfce`.
    gcc: GCCConfig fields (`enabled`, `k`, `update`, `momentum`, `loss_weight`).
    aux_level: pyramid level of the auxiliary head.
    dropout: before the classifiers.
    """

    def __init__(
        self,
        backbone: TimmBackbone,
        num_classes: int,
        channels: int = 256,
        stt: Mapping | None = None,
        context: str = "rfce",
        gcc: Mapping | None = None,
        aux_level: int = -2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        require("model.context", context)
        self.stt_cfg = _config(STTConfig, "stt", stt)
        self.gcc_cfg = _config(GCCConfig, "gcc", gcc)
        self.backbone = backbone
        self.num_classes = num_classes
        self.context_mode = context
        self.aux_level = aux_level
        self.neck = FusionNeck(backbone.channels, backbone.reductions, channels)
        self.aux_head = AuxHead(backbone.channels[aux_level], num_classes, channels // 2, dropout)
        s = self.stt_cfg
        self.stt = (
            SpatialTemporalTransformer(channels, s.depth, s.num_heads, s.window, s.mlp_ratio,
                                       s.drop_path_rate, s.rel_pos_bias)
            if s.enabled else None
        )
        self.context = (
            FrameContextEnhancement(channels, "query" if context == "qfce" else "reference")
            if context != "none" else None
        )
        g = self.gcc_cfg
        self.gcc = (GlobalCategoryContext(num_classes, channels, g.k, g.update, g.momentum, g.seed)
                    if g.enabled else None)
        parts = 1 + (self.context is not None) + (self.gcc is not None)
        self.fuse = ConvNormAct(parts * channels, channels, kernel_size=3)
        self.head = ClassifierHead(channels, num_classes, dropout)

    @property
    def uses_reference(self) -> bool:
        return self.context_mode == "rfce"

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What each frame contributes on its own: N 3 H W -> neck features N C h w (stride 8)
        and auxiliary logits N K h' w'. Streaming inference caches these per frame."""
        pyramid = self.backbone(images)
        return self.neck(pyramid, tuple(images.shape[-2:])), self.aux_head(pyramid[self.aux_level])

    def frames_needed(self) -> FramesNeeded:
        """Which frames `decode` reads besides the query: all T clip frames with STT, the
        reference frame with RFCE."""
        return FramesNeeded(all_clip=self.stt is not None, reference=self.uses_reference)

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        """frames: B T 3 H W (query last); reference: B 3 H W; memory_labels: B H W labels of the
        query frame for the GCC update (training only), IGNORE_INDEX where unknown.

        Returns the query frame's logits and aux_logits (B K H W) and `losses`, the model's own
        weighted losses (GCC's mse update).
        """
        B = frames.shape[0]
        needed = self.frames_needed()
        images = select_frames(frames, reference, needed)  # B n 3 H W
        features, aux = self.encode(images.flatten(0, 1))
        return self.decode(features.unflatten(0, (B, -1)), aux.unflatten(0, (B, -1)),
                           needed.clip_frames(frames.shape[1]), tuple(frames.shape[-2:]), memory_labels)

    def decode(
        self, features: torch.Tensor, aux: torch.Tensor, t: int, size: tuple[int, int],
        memory_labels: torch.Tensor | None = None,
    ) -> SegmenterOutput:
        """features: B n C h w and aux: B n K h' w' of the n encoded frames: the t clip frames
        (the query last), then the reference when RFCE reads it (`select_frames`)."""
        B, n = features.shape[:2]
        if self.stt is not None:
            query = self.stt(features[:, :t], query_only=True)[:, 0]  # B C h w
        else:
            query = features[:, t - 1]
        parts = [query]
        if self.context is not None:
            probs = F.interpolate(aux.flatten(0, 1), size=query.shape[-2:], mode="bilinear",
                                  align_corners=False).softmax(1).unflatten(0, (B, n))  # B n K h w
            ref, ref_probs = (features[:, t], probs[:, t]) if self.uses_reference else (None, None)
            # class context from neck features of the query and the reference alike (one feature
            # space for the shared key/value projections); the STT output queries it
            parts.append(self.context(query, features[:, t - 1], probs[:, t - 1], ref, ref_probs))
        losses = {}
        if self.gcc is not None:
            labels = memory_labels if self.training else None  # the memory learns in training only
            context, gcc_loss = self.gcc(query, labels)
            parts.append(context)
            if labels is not None:
                losses["gcc"] = self.gcc_cfg.loss_weight * gcc_loss
        logits = self.head(self.fuse(torch.cat(parts, 1)))  # B K h w
        return SegmenterOutput(upsample_to(logits, size), upsample_to(aux[:, t - 1], size), losses)
