"""Segmenter (Strudel et al., ICCV 2021): the mask transformer decoder. The deepest features become
patch tokens; one learned embedding per class joins them through a few transformer layers; the
logits are the scalar products of the normalised patch and class embeddings (then layer-normed
over classes). Simplified: the patch tokens come from the backbone's last level (stride 32; the
paper's ViT: stride 16)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.models.backbones import TimmBackbone
from ssltm.models.baselines.base import ImageSegmenter, check_heads


class MaskTransformer(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dim: int = 384, depth: int = 2, num_heads: int = 6,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.project = nn.Linear(in_channels, dim)
        self.classes = nn.Parameter(torch.randn(1, num_classes, dim) * dim**-0.5)
        layer = nn.TransformerEncoderLayer(dim, num_heads, 4 * dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.patch_proj = nn.Linear(dim, dim, bias=False)
        self.class_proj = nn.Linear(dim, dim, bias=False)
        self.mask_norm = nn.LayerNorm(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N C h w -> class masks N K h w."""
        n, _, h, w = x.shape
        tokens = self.project(x.flatten(2).transpose(1, 2))  # N hw D
        tokens = self.norm(self.blocks(torch.cat([tokens, self.classes.expand(n, -1, -1)], 1)))
        patches = F.normalize(self.patch_proj(tokens[:, : h * w]), dim=-1)  # N hw D
        classes = F.normalize(self.class_proj(tokens[:, h * w :]), dim=-1)  # N K D
        masks = self.mask_norm(patches @ classes.transpose(1, 2))  # N hw K
        return masks.transpose(1, 2).reshape(n, self.num_classes, h, w)


class Segmenter(ImageSegmenter):
    def __init__(self, backbone: TimmBackbone, num_classes: int, channels: int = 384, depth: int = 2,
                 num_heads: int = 6, aux_level: int = -2, dropout: float = 0.1) -> None:
        check_heads(channels, num_heads)
        super().__init__(backbone, num_classes, channels, aux_level, dropout)
        del self.head  # the masks are the logits
        self.decoder = MaskTransformer(backbone.channels[-1], num_classes, channels, depth, num_heads, dropout)

    def segment(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.backbone(images)
        masks = self.decoder(pyramid[-1])
        return masks, masks, self.aux_head(pyramid[self.aux_level])
