"""UPerNet (Xiao et al., ECCV 2018): a pyramid pooling module on the deepest level and an FPN over
the others, fused at stride 4; segmentation-models-pytorch's `UPerNetDecoder` (which layer-norms
each level first, as for Swin and ConvNeXt)."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.decoders.upernet.decoder import UPerNetDecoder

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import ImageSegmenter, smp_channels, smp_features


class UPerNet(ImageSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256,
                 aux_level: int = -2, dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.decoder = UPerNetDecoder(smp_channels(backbone.channels), encoder_depth=5, decoder_channels=channels)

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        return self.decoder(smp_features(features))
