"""How an evaluation forward pass covers a frame: whole (one pass at full resolution) or a sliding
window (fixed-size crops with overlap, logits averaged where windows overlap).

A sliding window evaluates frames larger than a network can take at once (Cityscapes' 1024x2048 on
a small GPU) or at the size a network was built for (Swin's fixed `img_size`). Every frame of a
clip and its reference are cut at the same window, so pixels stay aligned across time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.errors import ConfigError
from ssltm.models.segmenter import select_frames
from ssltm.utils.options import require


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Start offsets of windows of `crop` every `stride` pixels, the last one flush with the end."""
    starts = list(range(0, max(size - crop, 0) + 1, stride))
    if starts[-1] + crop < size:
        starts.append(size - crop)
    return starts


class Inference:
    """Args:
    mode: `whole` or `slide`.
    crop_size: (h, w) of a window (slide only).
    stride: (h, w) between windows; None: two thirds of the crop.
    """

    def __init__(
        self, mode: str = "whole", crop_size: tuple[int, int] | None = None, stride: tuple[int, int] | None = None
    ) -> None:
        require("inference.mode", mode)
        if mode == "slide" and crop_size is None:
            raise ConfigError("inference.mode=slide needs inference.crop_size=[h,w]")
        self.mode = mode
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.stride = tuple(stride) if stride is not None else (
            tuple(max(1, 2 * c // 3) for c in self.crop_size) if self.crop_size else None
        )

    def __call__(
        self, network: nn.Module, frames: torch.Tensor, reference: torch.Tensor,
        frame_indices: torch.Tensor | None = None, reference_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """frames: B T 3 H W; reference: B 3 H W. Returns logits, B K H W.

        With the frames' indices in their video (frame_indices B T, reference_index B; the batch
        holds one video, as evaluation batches do), a network that splits into `encode` and
        `decode` (SSLTM) encodes each distinct frame of the batch once: consecutive queries share
        most of their clip frames."""
        if self.mode == "slide":
            return self.slide(network, frames, reference)
        if frame_indices is not None and hasattr(network, "encode") and hasattr(network, "decode"):
            return shared_frame_logits(network, frames, reference, frame_indices, reference_index)
        return network(frames, reference).logits

    def slide(self, network: nn.Module, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        (ch, cw), (sh, sw) = self.crop_size, self.stride
        h, w = frames.shape[-2:]
        pad = (0, max(cw - w, 0), 0, max(ch - h, 0))  # frames smaller than a window: pad right / bottom
        frames, reference = F.pad(frames, pad), F.pad(reference, pad)
        ph, pw = frames.shape[-2:]
        total = counts = None
        for y in window_starts(ph, ch, sh):
            for x in window_starts(pw, cw, sw):
                logits = network(frames[..., y : y + ch, x : x + cw], reference[..., y : y + ch, x : x + cw]).logits
                if total is None:
                    total = logits.new_zeros((*logits.shape[:2], ph, pw))  # B K H W
                    counts = logits.new_zeros((1, 1, ph, pw))
                total[..., y : y + ch, x : x + cw] += logits
                counts[..., y : y + ch, x : x + cw] += 1
        return (total / counts)[..., :h, :w]


def shared_frame_logits(
    network: nn.Module, frames: torch.Tensor, reference: torch.Tensor, frame_indices: torch.Tensor,
    reference_index: torch.Tensor,
) -> torch.Tensor:
    """`network(frames, reference).logits` with every distinct frame of the batch encoded once.

    frames: B T 3 H W, reference: B 3 H W of one video; frame_indices: B T and reference_index: B,
    the frames' indices in that video. Returns B K H W.
    """
    needed = network.frames_needed()
    ids = select_frames(frame_indices, reference_index, needed)  # B n
    images = select_frames(frames, reference, needed)  # B n 3 H W
    unique, inverse = torch.unique(ids.flatten(), return_inverse=True)  # U, B*n
    # one place where each distinct frame occurs (any one: they hold the same image)
    where = torch.empty_like(unique).scatter_(0, inverse, torch.arange(len(inverse), device=inverse.device))
    features, aux = network.encode(images.flatten(0, 1)[where])  # U C h w, U K h' w'
    inverse = inverse.view(ids.shape)  # B n
    t = needed.clip_frames(frames.shape[1])
    return network.decode(features[inverse], aux[inverse], t, tuple(frames.shape[-2:])).logits
