"""Frame context enhancement: QFCE (from the query frame) and RFCE (from a distant reference frame).

SSLTM (Lao et al., CVPR 2023) takes long-term context from a reference frame far from the query
(RFCE); its baseline QFCE takes the same context from the query frame itself. The paper does not
give the operator; we follow object-contextual representations (OCR, Yuan et al., ECCV 2020):
a frame's per-class context vectors are the probability-weighted means of its pixel features
(probabilities from the auxiliary head), and every query pixel attends over the context vectors.
RFCE uses the reference frame's context vectors and the query's, concatenated (2K vectors).

Both frames' context vectors come from the same feature space, the neck's (one backbone + neck
pass per frame), so that the shared key/value projections read like with like. The pixels that
attend are the query frame's enhanced features (after STT, when it is on), through their own
query projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ssltm.errors import ConfigError
from ssltm.models.heads import ConvNormAct


def class_context(features: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Per-class context vectors: B C H W features, B K H W probabilities -> B K C.

    ctx_k = sum_x p_k(x) f(x) / sum_x p_k(x)  (a class absent from the frame gives a near-zero vector)
    """
    weights = probs.flatten(2)  # B K HW
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-6)
    return torch.einsum("bkn,bcn->bkc", weights, features.flatten(2))


class ContextAttention(nn.Module):
    """Each pixel attends over a set of context vectors (OCR's object-contextual attention).

    Args:
        channels: C of the pixel features and of the context vectors.
        key_channels: width of the query/key/value projections.
    """

    def __init__(self, channels: int, key_channels: int | None = None) -> None:
        super().__init__()
        key_channels = key_channels or channels // 2
        self.query = nn.Sequential(ConvNormAct(channels, key_channels), ConvNormAct(key_channels, key_channels))
        self.key = nn.Sequential(nn.Linear(channels, key_channels), nn.ReLU(inplace=True))
        self.value = nn.Sequential(nn.Linear(channels, key_channels), nn.ReLU(inplace=True))
        self.out = ConvNormAct(key_channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x: B C H W pixels, context: B M C vectors -> B C H W attended context per pixel."""
        H, W = x.shape[-2:]
        q = rearrange(self.query(x), "b c h w -> b (h w) c")  # B HW Ck
        k, v = self.key(context), self.value(context)  # B M Ck
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # B HW Ck
        return self.out(rearrange(out, "b (h w) c -> b c h w", h=H, w=W))


class FrameContextEnhancement(nn.Module):
    """QFCE (`source="query"`) or RFCE (`source="reference"`).

    Args:
        channels: C of the features.
        source: where the class context comes from: the query frame, or the reference frame
            (concatenated with the query's).
    """

    def __init__(self, channels: int, source: str = "reference") -> None:
        super().__init__()
        if source not in ("query", "reference"):
            raise ConfigError(f"model.context must be none, qfce or rfce; got source {source!r}")
        self.source = source
        self.attention = ContextAttention(channels)

    def forward(
        self,
        pixels: torch.Tensor,
        query: torch.Tensor,
        query_probs: torch.Tensor,
        reference: torch.Tensor | None = None,
        reference_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """pixels: B C H W, the features that attend (the query frame's, after STT);
        query, reference: B C H W neck features of the two frames; *_probs: B K H W.
        Returns B C H W context features."""
        context = class_context(query, query_probs)  # B K C
        if self.source == "reference":
            if reference is None or reference_probs is None:
                raise ValueError("RFCE needs the reference frame's features and probabilities")
            context = torch.cat([class_context(reference, reference_probs), context], dim=1)  # B 2K C
        return self.attention(pixels, context)
