"""Spatial-Temporal Transformer (STT): 3D window attention + Mix-FFN over adjacent frames.

SSLTM (Lao et al., CVPR 2023), supplementary Sec. 1: the T x H x W feature volume of the clip is
padded to multiples of the window t x h x w, cut into non-overlapping windows, self-attention runs
inside each window, and the windows are merged back. Mix-FFN (SegFormer, Xie et al., NeurIPS 2021)
puts a depth-wise 3x3 convolution between the two linear layers, which links neighbouring windows
without Video Swin's shifted windows.

Our reading of what the paper leaves open: pre-norm residual blocks (as Swin/SegFormer), the
padding is masked out of attention (padded tokens are never attended to), windows shrink to the
input when it is smaller (as Video Swin), the depth-wise convolution is 2D per frame, and a Swin
style relative position bias is optional (`rel_pos_bias`). Time is padded at the start, not
the end, so that the query frame (the clip's last) never sits alone in a window of padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, trunc_normal_
from torch import nn

from ssltm.errors import ConfigError

Size3 = tuple[int, int, int]


def fit_window(window: Size3, thw: Size3) -> Size3:
    """Shrink the window to the input where the input is smaller (Video Swin's get_window_size)."""
    return tuple(min(w, s) for w, s in zip(window, thw))  # type: ignore[return-value]


def pad_to_window(x: torch.Tensor, window: Size3) -> tuple[torch.Tensor, Size3]:
    """Zero-pad B T H W C to multiples of the window: H and W at the end, T at the START, so that
    the query frame (the last of the clip) always shares its window with the frames before it."""
    T, H, W = x.shape[1:4]
    pads = tuple((-s) % w for s, w in zip((T, H, W), window))
    if any(pads):
        x = F.pad(x, (0, 0, 0, pads[2], 0, pads[1], pads[0], 0))
    return x, pads  # type: ignore[return-value]


def crop_padding(x: torch.Tensor, pads: Size3) -> torch.Tensor:
    """Undo `pad_to_window`: B T' H' W' C -> B T H W C."""
    T, H, W = x.shape[1:4]
    return x[:, pads[0] :, : H - pads[1], : W - pads[2]]


def window_partition(x: torch.Tensor, window: Size3) -> torch.Tensor:
    """B T H W C (multiples of the window) -> B*nW t*h*w C, windows in (T, H, W) raster order."""
    t, h, w = window
    return rearrange(x, "b (nt t) (nh h) (nw w) c -> (b nt nh nw) (t h w) c", t=t, h=h, w=w)


def window_reverse(windows: torch.Tensor, window: Size3, thw: Size3, batch: int) -> torch.Tensor:
    """B*nW t*h*w C -> B T H W C, the inverse of `window_partition` (thw: the padded size)."""
    t, h, w = window
    T, H, W = thw
    return rearrange(
        windows, "(b nt nh nw) (t h w) c -> b (nt t) (nh h) (nw w) c",
        b=batch, nt=T // t, nh=H // h, nw=W // w, t=t, h=h, w=w,
    )


def padding_mask(thw: Size3, pads: Size3, window: Size3, device: torch.device) -> torch.Tensor:
    """nW N bool: True for real tokens, False for padding, in window layout."""
    T, H, W = thw
    valid = torch.zeros(1, T + pads[0], H + pads[1], W + pads[2], 1, dtype=torch.bool, device=device)
    valid[:, pads[0] :, :H, :W] = True
    return window_partition(valid, window)[..., 0]  # nW N


class RelativePositionBias3D(nn.Module):
    """Learned bias per head for each 3D offset inside a window (Swin / Video Swin)."""

    def __init__(self, window: Size3, num_heads: int) -> None:
        super().__init__()
        self.window = window
        t, h, w = window
        self.table = nn.Parameter(torch.zeros((2 * t - 1) * (2 * h - 1) * (2 * w - 1), num_heads))
        trunc_normal_(self.table, std=0.02)

    def forward(self, window: Size3) -> torch.Tensor:
        """heads N N bias for a window of size `window` (<= the configured one)."""
        T, H, W = self.window
        coords = torch.stack(
            torch.meshgrid(*[torch.arange(s, device=self.table.device) for s in window], indexing="ij")
        ).flatten(1)  # 3 N
        rel = coords[:, :, None] - coords[:, None, :]  # 3 N N
        index = (rel[0] + T - 1) * (2 * H - 1) * (2 * W - 1) + (rel[1] + H - 1) * (2 * W - 1) + rel[2] + W - 1
        return self.table[index].permute(2, 0, 1)  # heads N N


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside each window, through `scaled_dot_product_attention`.

    Args:
        dim: token channels C.
        num_heads: attention heads.
        window: (t, h, w), needed only for the relative position bias.
        rel_pos_bias: add a learned relative position bias.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Size3,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        rel_pos_bias: bool = False,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.channels ({dim}) must be divisible by model.stt.num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.bias = RelativePositionBias3D(window, num_heads) if rel_pos_bias else None

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor | None = None, window: Size3 | None = None
    ) -> torch.Tensor:
        """x: B*nW N C; key_mask: B*nW N bool (False: padding, never attended to)."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        mask = None
        if self.bias is not None:
            mask = self.bias(window).to(q.dtype)[None]  # 1 heads N N
        if key_mask is not None:
            pad = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device)
            pad = pad.masked_fill(~key_mask, float("-inf"))[:, None, None, :]  # B*nW 1 1 N
            mask = pad if mask is None else mask + pad
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0
        )  # B*nW heads N d
        return self.proj_drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))


class MixFFN(nn.Module):
    """SegFormer's Mix-FFN: fc1 -> depth-wise 3x3 conv (per frame) -> GELU -> fc2."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = nn.Conv2d(hidden_features, hidden_features, 3, padding=1, groups=hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B T H W C -> B T H W C."""
        B, T = x.shape[:2]
        x = self.fc1(x)
        x = rearrange(x, "b t h w c -> (b t) c h w")
        x = self.act(self.dwconv(x))
        x = rearrange(x, "(b t) c h w -> b t h w c", b=B, t=T)
        return self.drop(self.fc2(self.drop(x)))


class STTBlock(nn.Module):
    """x + DropPath(W-MSA(LN(x))), then x + DropPath(MixFFN(LN(x))), on B T H W C tokens."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Size3 = (2, 8, 8),
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        rel_pos_bias: bool = False,
        mix_ffn: bool = True,
    ) -> None:
        super().__init__()
        self.window = tuple(window)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, num_heads, self.window, attn_drop=attn_drop, proj_drop=drop,
                                      rel_pos_bias=rel_pos_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, int(dim * mlp_ratio), drop) if mix_ffn else None

    def attention(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        """The window-attention sublayer alone (without the residual): B T H W C -> B T H W C, or
        B 1 H W C for the last (query) frame alone when `query_only`: then only the windows that
        hold the query frame are computed, the last ones in time (time is padded at the start)."""
        B, T, H, W, _ = x.shape
        window = fit_window(self.window, (T, H, W))
        padded, pads = pad_to_window(x, window)
        if query_only:
            padded, pads = padded[:, -window[0]:], (0, pads[1], pads[2])
            T = window[0]  # the last temporal window: real frames only (see pad_to_window)
        thw = tuple(padded.shape[1:4])
        windows = window_partition(padded, window)  # B*nW N C
        key_mask = None
        if any(pads):
            key_mask = padding_mask((T, H, W), pads, window, x.device).repeat(B, 1)  # B*nW N
        out = window_reverse(self.attn(windows, key_mask, window), window, thw, B)  # B T' H' W' C
        out = crop_padding(out, pads)
        return out[:, -1:] if query_only else out

    def forward(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        """x: B T H W C -> B T H W C; B 1 H W C (the last frame) when `query_only`: attention then
        runs only in the windows that hold the query frame (their keys and values unchanged), and
        the residual and Mix-FFN only for the last frame."""
        attended = self.drop_path(self.attention(self.norm1(x), query_only))
        x = (x[:, -1:] if query_only else x) + attended
        if self.ffn is not None:
            x = x + self.drop_path(self.ffn(self.norm2(x)))
        return x


class SpatialTemporalTransformer(nn.Module):
    """`depth` STT blocks over the features of T adjacent frames.

    Args:
        dim: feature channels C.
        depth: number of blocks.
        num_heads: attention heads.
        window: (t, h, w) window size in frames and feature cells.
        mlp_ratio: hidden width of Mix-FFN relative to C.
        drop_path_rate: stochastic depth, rising linearly to this value over the blocks.
        rel_pos_bias: learned relative position bias in attention.
    """

    def __init__(
        self,
        dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        window: Size3 = (2, 8, 8),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        rel_pos_bias: bool = False,
    ) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path_rate, depth).tolist() if depth else []
        self.blocks = nn.ModuleList(
            STTBlock(dim, num_heads, tuple(window), mlp_ratio, drop_path=r, rel_pos_bias=rel_pos_bias)
            for r in rates
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        """x: B T C H W -> B T C H W; with `query_only`, B 1 C H W: the last (query) frame, the
        only one SSLTM reads. Its last block then computes that frame alone, which gives the same
        values for it at a fraction of the block's cost."""
        x = rearrange(x, "b t c h w -> b t h w c")
        for i, block in enumerate(self.blocks):
            x = block(x, query_only=query_only and i == len(self.blocks) - 1)
        if query_only:
            x = x[:, -1:]  # (depth 0: no block took the query alone)
        return rearrange(self.norm(x), "b t h w c -> b t c h w")
