"""STT: window partition, masked window attention, Mix-FFN, and the whole transformer."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ssltm.models.stt import (
    MixFFN,
    SpatialTemporalTransformer,
    STTBlock,
    crop_padding,
    pad_to_window,
    window_partition,
    window_reverse,
)


def full_attention(attn, tokens: torch.Tensor) -> torch.Tensor:
    """Plain softmax(QK^T / sqrt(d)) V with the module's own weights: B N C -> B N C."""
    B, N, C = tokens.shape
    h = attn.num_heads
    q, k, v = attn.qkv(tokens).view(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(C // h)).softmax(-1)
    return attn.proj((weights @ v).transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("thw", [(5, 7, 9), (4, 8, 8), (1, 3, 10)])
def test_window_partition_and_merge_are_exact_inverses(thw):
    x = torch.randn(2, *thw, 6)
    window = (2, 4, 4)
    padded, pads = pad_to_window(x, window)
    assert all(s % w == 0 for s, w in zip(padded.shape[1:4], window))
    windows = window_partition(padded, window)
    assert windows.shape[1:] == (2 * 4 * 4, 6)
    back = window_reverse(windows, window, tuple(padded.shape[1:4]), batch=2)
    assert torch.equal(back, padded)
    assert torch.equal(crop_padding(back, pads), x)


def test_time_is_padded_at_the_start_so_the_query_frame_has_company():
    x = torch.randn(1, 3, 4, 4, 2)
    padded, pads = pad_to_window(x, (2, 4, 4))
    assert pads == (1, 0, 0)
    assert padded[:, 0].abs().max() == 0 and torch.equal(padded[:, 1:], x)
    # the last window in time holds frames 1 and 2 (the query)


def test_window_covering_the_whole_input_equals_full_attention():
    torch.manual_seed(0)
    block = STTBlock(dim=32, num_heads=4, window=(4, 8, 8)).eval()
    x = torch.randn(2, 4, 6, 8, 32)  # window shrinks to (4, 6, 8): one window, no padding
    out = block.attention(x)
    expected = full_attention(block.attn, x.flatten(1, 3)).view_as(x)
    assert torch.allclose(out, expected, atol=1e-5)


def test_padding_never_changes_the_output_of_real_tokens():
    """Windows that overhang the input attend over their real tokens only, exactly as full
    attention over those tokens alone."""
    torch.manual_seed(0)
    block = STTBlock(dim=16, num_heads=2, window=(2, 4, 4)).eval()
    T, H, W = 3, 5, 6  # padded to 4 x 8 x 8, time at the start: windows hold frames {0}, {1, 2}
    x = torch.randn(1, T, H, W, 16)
    out = block.attention(x)
    expected = torch.empty_like(x)
    for (t0, t1), h0, w0 in itertools.product([(0, 1), (1, 3)], range(0, H, 4), range(0, W, 4)):
        region = (slice(None), slice(t0, t1), slice(h0, h0 + 4), slice(w0, w0 + 4))
        real = x[region]
        expected[region] = full_attention(block.attn, real.flatten(1, 3)).view_as(real)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.isfinite(out).all()


def test_mix_ffn_links_neighbouring_windows_after_one_block_and_attention_does_not():
    torch.manual_seed(0)
    block = STTBlock(dim=16, num_heads=2, window=(1, 4, 4)).eval()
    x = torch.randn(1, 1, 4, 8, 16)  # two windows side by side: columns 0-3 and 4-7
    changed = x.clone()
    changed[0, 0, 1, 3] += torch.randn(16)  # a token on the right edge of the left window
    attention_only = (changed + block.attention(block.norm1(changed))) - (x + block.attention(block.norm1(x)))
    assert attention_only[..., 4:, :].abs().max() == 0  # attention alone stays in its window
    assert attention_only[..., :4, :].abs().max() > 0
    diff = block(changed) - block(x)
    assert diff[0, 0, 1, 4].abs().max() > 1e-4  # the neighbour across the border moved
    assert diff[0, 0, :, 6:].abs().max() == 0  # beyond the 3x3 reach nothing moved


def test_mix_ffn_keeps_the_shape_and_mixes_space():
    ffn = MixFFN(8, 32).eval()
    x = torch.zeros(2, 3, 5, 7, 8)
    x[0, 1, 2, 3] = 1.0
    y = ffn(x) - ffn(torch.zeros_like(x))
    assert y.shape == x.shape
    assert y[0, 1, 1:4, 2:5].abs().sum(-1).gt(0).all() and y[0, 0].abs().max() == 0


@pytest.mark.parametrize("rel_pos_bias", [False, True])
@pytest.mark.parametrize("thw", [(4, 12, 16), (4, 9, 9), (2, 5, 13)])
def test_stt_keeps_shape_and_is_finite_on_square_and_non_square_inputs(thw, rel_pos_bias):
    stt = SpatialTemporalTransformer(dim=32, depth=2, num_heads=4, window=(2, 8, 8), rel_pos_bias=rel_pos_bias)
    x = torch.randn(2, thw[0], 32, thw[1], thw[2], requires_grad=True)
    y = stt(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_relative_position_bias_enters_attention():
    torch.manual_seed(0)
    block = STTBlock(dim=16, num_heads=2, window=(2, 4, 4), rel_pos_bias=True).eval()
    x = torch.randn(1, 2, 4, 4, 16)
    before = block.attention(x)
    with torch.no_grad():
        block.attn.bias.table.add_(torch.randn_like(block.attn.bias.table))
    assert not torch.allclose(before, block.attention(x))


def test_bad_head_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"must be divisible by model.stt.num_heads"):
        STTBlock(dim=30, num_heads=4)


@pytest.mark.parametrize("frames", [1, 3, 4, 6, 9])
@pytest.mark.parametrize("rel_pos_bias", [False, True])
def test_query_only_gives_the_last_frame_of_the_full_computation(frames, rel_pos_bias):
    """SSLTM reads only the query frame: computing the last block for it alone changes nothing
    for it (windows in time: one, several, padded at the start)."""
    torch.manual_seed(0)
    stt = SpatialTemporalTransformer(32, depth=2, num_heads=4, window=(4, 8, 8), rel_pos_bias=rel_pos_bias).eval()
    x = torch.randn(2, frames, 32, 12, 10)
    with torch.no_grad():
        full = stt(x)
        query = stt(x, query_only=True)
    assert query.shape == (2, 1, 32, 12, 10)
    torch.testing.assert_close(query[:, 0], full[:, -1], atol=1e-5, rtol=1e-5)
