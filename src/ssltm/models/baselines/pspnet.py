"""PSPNet (Zhao et al., CVPR 2017): pyramid pooling (bins 1, 2, 3, 6) on the deepest features,
segmentation-models-pytorch's `PSPDecoder`. Simplified: the backbone is not dilated, so the
pooling runs at stride 32 (the paper: 8) and the logits are upsampled from there."""

from __future__ import annotations

from segmentation_models_pytorch.decoders.pspnet.decoder import PSPDecoder

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import ImageSegmenter


class PSPNet(ImageSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 512,
                 aux_level: int = -2, dropout: float = 0.1) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        self.decoder = PSPDecoder(encoder_channels=backbone.channels, out_channels=channels, dropout=dropout)
