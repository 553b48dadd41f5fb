"""Optical flow for the flow-based baselines (NetWarp, ETC): an estimator and backward warping.

`FlowEstimator` wraps torchvision's RAFT architecture (`raft_small` or `raft_large`) from random
weights or a local checkpoint (nothing is downloaded), frozen by default as in NetWarp and ETC,
which use a pre-trained flow network. `source=zero` gives zero flow: the warping becomes the
identity, a cheap control and the CPU default of the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.optical_flow import raft_large, raft_small

from ssltm.constants import IMAGENET_MEAN, IMAGENET_STD
from ssltm.errors import BackboneCheckpointError, ConfigError
from ssltm.models.backbones import read_state_dict

SOURCES = {"raft_small": raft_small, "raft_large": raft_large}
MIN_SIDE = 128  # RAFT downsamples by 8, then its correlation pyramid by 8 more


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warping: out[:, :, y, x] = x[:, :, y + flow_y, x + flow_x] (bilinear, zeros outside).

    x: N C H W; flow: N 2 H W in pixels, channel 0 horizontal, channel 1 vertical.
    """
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=x.dtype), torch.arange(w, device=x.device, dtype=x.dtype),
        indexing="ij",
    )
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0  # N H W, in [-1, 1]
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)  # N H W 2
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Flow at another resolution: resized and its vectors scaled by the same factors."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    return torch.stack([out[:, 0] * (size[1] / w), out[:, 1] * (size[0] / h)], dim=1)


class FlowEstimator(nn.Module):
    """Flow from `target` to `source` frames (for each target pixel, where it was in the source).

    Args:
        source: `raft_small`, `raft_large` or `zero`.
        checkpoint: local weights of the torchvision RAFT model (a state dict file).
        num_updates: RAFT's refinement iterations (12 in the paper, fewer is faster).
        trainable: train the flow network with the segmenter (NetWarp fine-tunes it); frozen otherwise.
    Frames come normalised as the data sets serve them (ImageNet mean / std); RAFT wants [-1, 1].
    """

    def __init__(
        self, source: str = "raft_small", checkpoint: str | None = None, num_updates: int = 6, trainable: bool = False
    ) -> None:
        super().__init__()
        if source not in (*SOURCES, "zero"):
            raise ConfigError(f"model.flow.source must be one of {', '.join([*SOURCES, 'zero'])}; got {source!r}")
        self.source = source
        self.num_updates = num_updates
        self.trainable = trainable
        self.raft = SOURCES[source](weights=None) if source != "zero" else None
        if self.raft is not None and checkpoint:
            state = read_state_dict(checkpoint)
            missing, unexpected = self.raft.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise BackboneCheckpointError(
                    f"model.flow.checkpoint {checkpoint} does not fit {source}: {len(missing)} missing keys "
                    f"{missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
                )
        if self.raft is not None and not trainable:
            self.raft.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.raft is not None and not self.trainable:
            self.raft.eval()  # a frozen flow network keeps its batch statistics
        return self

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """target, source: N 3 H W (normalised) -> flow N 2 H W in pixels, target -> source."""
        n, _, h, w = target.shape
        if self.raft is None:
            return target.new_zeros(n, 2, h, w)
        images = [(x * self.std + self.mean) * 2 - 1 for x in (target, source)]
        # RAFT's correlation pyramid needs sides of at least MIN_SIDE: enlarge small frames
        scale = max(1.0, MIN_SIDE / min(h, w))
        sh, sw = round(h * scale), round(w * scale)
        if scale > 1:
            images = [F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False) for x in images]
        ph, pw = (-sh) % 8, (-sw) % 8  # and sides divisible by 8: pad, then crop the flow back
        images = [F.pad(x, (0, pw, 0, ph), mode="replicate") for x in images]
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            flow = self.raft(*images, num_flow_updates=self.num_updates)[-1][..., :sh, :sw]
        return resize_flow(flow, (h, w)) if scale > 1 else flow
