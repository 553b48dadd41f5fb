"""Per-frame baseline: a timm backbone and SegFormer's all-MLP neck on the query frame alone.

It sees the same samples as the video models (`frames`, `reference`) but uses only the query
frame, `frames[:, -1]`: the image-based lower bound that temporal models must beat. It is the
video baselines' `NeckSegmenter` with a narrower auxiliary head (half the neck's width).
"""

from __future__ import annotations

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import NeckSegmenter


class PerFrameSegmenter(NeckSegmenter):
    """Args:
    backbone: the feature pyramid.
    num_classes: output classes.
    channels: width of the fusion neck.
    aux_level: pyramid level that feeds the auxiliary head (-2: the stride-16 level).
    dropout: before the classifiers.
    """

    def __init__(
        self, backbone: TimmBackbone, num_classes: int, channels: int = 128, aux_level: int = -2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout, aux_channels=channels // 2)
        self._register_load_state_dict_pre_hook(_neck_is_now_decoder)


def _neck_is_now_decoder(state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints written before the per-frame network became a `NeckSegmenter` name its neck
    `neck`; it is `decoder` now."""
    for key in [k for k in state_dict if k.startswith(prefix + "neck.")]:
        state_dict[prefix + "decoder." + key[len(prefix + "neck."):]] = state_dict.pop(key)
