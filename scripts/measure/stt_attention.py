"""`bench.py stt`: the STT block against a naive attention and against Video Swin's shifted windows."""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import DEVICE, compare_times, mb, peak_memory, show
from ssltm.models.stt import (
    STTBlock,
    crop_padding,
    fit_window,
    pad_to_window,
    padding_mask,
    window_partition,
    window_reverse,
)

# --- stt ---------------------------------------------------------------------------------------
STT_SHAPES = {
    # synthetic default: batch 8 of 96x128 frames, T = 4, C = 320, stride-8 features 12 x 16
    "default": dict(batch=8, frames=4, channels=320, height=12, width=16),
    # VSPW: 480x480 training crops, batch 2 per GPU, T = 4: stride-8 features 60 x 60
    "vspw": dict(batch=2, frames=4, channels=320, height=60, width=60),
}


class NaiveSTTBlock(STTBlock):
    """The STT block with attention written out: the full attention matrix and an additive mask
    (nW x N x N) are materialised, as in Swin / Video Swin's reference code."""

    def attention(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        B, T, H, W, C = x.shape
        window = fit_window(self.window, (T, H, W))
        padded, pads = pad_to_window(x, window)
        thw = tuple(padded.shape[1:4])
        windows = window_partition(padded, window)  # B*nW N C
        valid = padding_mask((T, H, W), pads, window, x.device)  # nW N
        mask = torch.zeros(valid.shape[0], valid.shape[1], valid.shape[1], device=x.device, dtype=x.dtype)
        mask = mask.masked_fill(~valid[:, None, :], float("-inf"))  # nW N N
        out = crop_padding(window_reverse(naive_attention(self.attn, windows, mask), window, thw, B), pads)
        return out[:, -1:] if query_only else out


def naive_attention(attn, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, written out. windows: B*nW N C; mask: nW N N."""
    q, k, v = rearrange(attn.qkv(windows), "b n (three h d) -> three b h n d", three=3, h=attn.num_heads)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # B*nW heads N N
    nW = mask.shape[0]
    scores = scores.view(-1, nW, *scores.shape[1:]) + mask[None, :, None]
    out = scores.flatten(0, 1).softmax(-1) @ v  # B*nW heads N d
    return attn.proj(rearrange(out, "b h n d -> b n (h d)"))


def shifted_window_mask(thw: tuple[int, int, int], window: tuple, shift: tuple, device) -> torch.Tensor:
    """Video Swin's attention mask for cyclically shifted windows: nW N N, -100 between tokens
    of different regions (compute_mask in the official implementation)."""
    T, H, W = thw
    regions = torch.zeros(1, T, H, W, 1, device=device)
    count = 0
    for t in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for h in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for w in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                regions[:, t, h, w, :] = count
                count += 1
    ids = window_partition(regions, window)[..., 0]  # nW N
    mask = ids[:, None, :] - ids[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class ShiftedSTTBlock(STTBlock):
    """Video Swin's shifted-window attention (SW-MSA): the volume is rolled by half a window, a
    region mask keeps tokens from attending across the roll's seams, attention is written out."""

    def attention(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        B, T, H, W, C = x.shape
        window = fit_window(self.window, (T, H, W))
        shift = tuple(0 if w >= s else w // 2 for w, s in zip(self.window, (T, H, W)))  # Video Swin's rule
        padded, pads = pad_to_window(x, window)
        thw = tuple(padded.shape[1:4])
        rolled = torch.roll(padded, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        windows = window_partition(rolled, window)  # B*nW N C
        mask = shifted_window_mask(thw, window, shift, x.device)
        out = window_reverse(naive_attention(self.attn, windows, mask), window, thw, B)
        out = crop_padding(torch.roll(out, shifts=shift, dims=(1, 2, 3)), pads)
        return out[:, -1:] if query_only else out


STT_VARIANTS = {"stt (ours, SDPA)": STTBlock, "naive": NaiveSTTBlock, "shifted windows": ShiftedSTTBlock}


def stt_case(variant: str, shape: str, part: str = "block") -> Callable[[], None]:
    """Forward + backward of one STT block (default config: 8 heads, window 4x8x8) on fixed input;
    `part="attention"`: of its window-attention sublayer alone (no norms, no Mix-FFN)."""
    s = STT_SHAPES[shape]
    torch.manual_seed(0)
    block = STT_VARIANTS[variant](s["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE)
    x = torch.randn(s["batch"], s["frames"], s["height"], s["width"], s["channels"], device=DEVICE, requires_grad=True)

    forward = block if part == "block" else block.attention

    def run() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        forward(x).square().mean().backward()

    return run


def bench_stt(args) -> dict:
    results = {}
    for shape, dims in STT_SHAPES.items():
        # the naive block computes the same function as ours (same weights): check before timing
        torch.manual_seed(0)
        ours = STTBlock(dims["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE).eval()
        naive = NaiveSTTBlock(dims["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE).eval()
        naive.load_state_dict(ours.state_dict())
        x = torch.randn(1, dims["frames"], dims["height"], dims["width"], dims["channels"], device=DEVICE)
        with torch.no_grad():
            difference = float((ours(x) - naive(x)).abs().max())
        results[shape] = {"shape": dims, "max_abs_difference_ours_vs_naive": difference}
        for part in ("block", "attention"):
            times = compare_times({v: stt_case(v, shape, part) for v in STT_VARIANTS}, args.repeats)
            memory = {v: peak_memory(stt_case(v, shape, part)) for v in STT_VARIANTS}
            base = "stt (ours, SDPA)"
            results[shape][part] = {
                v: {**times[v], "peak_memory_bytes": memory[v],
                    "speedup_of_ours": times[v]["median_s"] / times[base]["median_s"],
                    "memory_ratio_to_ours": (memory[v] / memory[base]) if memory[v] and memory[base] else None}
                for v in STT_VARIANTS
            }
            rows = [[v, f"{1000 * r['median_s']:.1f}", f"{r['speedup_of_ours']:.2f}x", mb(r["peak_memory_bytes"]),
                     f"{r['memory_ratio_to_ours']:.2f}x" if r["memory_ratio_to_ours"] else "n/a"]
                    for v, r in results[shape][part].items()]
            show(f"STT {part} fwd+bwd, {shape} shape {dims} ({DEVICE.type})",
                 ["variant", "median ms", "time / ours", "peak MB", "memory / ours"], rows)
    return {"results": results}
