"""What every segmentation network of the suite returns, and which frames it reads.

A segmenter is called as `network(frames B T 3 H W, reference B 3 H W)` and returns a
`SegmenterOutput` for the query frame (the clip's last). Networks that split into a per-frame
`encode` and a clip-level `decode` (SSLTM, the per-frame network) also say which frames `decode`
reads besides the query (`frames_needed()`); `select_frames` applies that rule, the one place it
is written: for images in training, for frame indices in evaluation and streaming.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch


@dataclass
class SegmenterOutput:
    logits: torch.Tensor  # B K H W, the query frame at the input's size
    aux_logits: torch.Tensor  # B K H W, the auxiliary head's (deep supervision)
    losses: dict[str, torch.Tensor] = field(default_factory=dict)  # the model's own weighted losses


class FramesNeeded(NamedTuple):
    all_clip: bool  # all T clip frames (temporal modules), or the query only
    reference: bool  # the reference frame (RFCE)

    def clip_frames(self, num_frames: int) -> int:
        """How many of a clip's `num_frames` frames `decode` reads."""
        return num_frames if self.all_clip else 1


def select_frames(clip: torch.Tensor, reference: torch.Tensor, needed: FramesNeeded) -> torch.Tensor:
    """The frames to encode, in `decode`'s order: clip B T ... (the query last) and reference B ...
    -> B n ..., the clip frames (all, or the query only) then the reference when it is read.
    Works on images (B T 3 H W) and on frame indices (B T) alike."""
    chosen = clip if needed.all_clip else clip[:, -1:]
    return torch.cat([chosen, reference[:, None]], 1) if needed.reference else chosen
