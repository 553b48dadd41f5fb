"""What the image-based baselines share: the backbone on the query frame, a decoder of the
feature pyramid, a classifier and the auxiliary head (the same deep supervision as SSLTM)."""

from __future__ import annotations

import torch
from torch import nn

from ssltm.errors import ConfigError
from ssltm.models.backbones import TimmBackbone
from ssltm.models.heads import AuxHead, ClassifierHead, FusionNeck, upsample_to
from ssltm.models.segmenter import SegmenterOutput


class ImageSegmenter(nn.Module):
    """Subclasses build `self.decoder` (pyramid -> N C h w with `decoder_channels` channels) or
    override `decode`; `segment` is the whole network on single images, which the video baselines
    reuse frame by frame.

    Args:
        backbone: the feature pyramid.
        num_classes: output classes.
        decoder_channels: channels of the decoder's output.
        aux_level: pyramid level of the auxiliary head.
        dropout: before the classifiers.
        aux_channels: hidden width of the auxiliary head.
    """

    def __init__(
        self, backbone: TimmBackbone, num_classes: int, decoder_channels: int, aux_level: int = -2,
        dropout: float = 0.1, aux_channels: int = 256,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.aux_level = aux_level
        self.head = ClassifierHead(decoder_channels, num_classes, dropout)
        self.aux_head = AuxHead(backbone.channels[aux_level], num_classes, aux_channels, dropout)

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        return self.decoder(features)

    def segment(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N 3 H W -> (decoder features N C h w, logits N K h w, aux logits N K h' w')."""
        pyramid = self.backbone(images)
        features = self.decode(pyramid, tuple(images.shape[-2:]))
        return features, self.head(features), self.aux_head(pyramid[self.aux_level])

    def forward(
        self, frames: torch.Tensor, reference: torch.Tensor, memory_labels: torch.Tensor | None = None
    ) -> SegmenterOutput:
        """frames: B T 3 H W (the query last); reference and memory_labels unused."""
        query = frames[:, -1]
        size = tuple(query.shape[-2:])
        _, logits, aux = self.segment(query)
        return SegmenterOutput(upsample_to(logits, size), upsample_to(aux, size))


def check_heads(channels: int, num_heads: int) -> None:
    """Attention splits `channels` evenly across `num_heads`."""
    if channels % num_heads:
        raise ConfigError(f"model.channels ({channels}) must be divisible by model.num_heads ({num_heads})")


def smp_features(features: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """The suite's pyramid (strides 4, 8, 16, 32) in segmentation-models-pytorch's layout, which
    starts at strides 1 and 2 (never read by the decoders used here)."""
    return [None, None, *features]


def smp_channels(channels: list[int]) -> list[int]:
    return [3, 0, *channels]


class NeckSegmenter(ImageSegmenter):
    """The per-frame network of the video baselines: SegFormer's all-MLP neck over the pyramid at
    stride 8 (the `per_frame` model's), a classifier and the auxiliary head."""

    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 256, aux_level: int = -2,
                 dropout: float = 0.1, aux_channels: int = 256) -> None:
        super().__init__(backbone, num_classes, channels, aux_level, dropout, aux_channels)
        self.decoder = FusionNeck(backbone.channels, backbone.reductions, channels)

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        return self.decoder(features, image_size)  # N C H/8 W/8
