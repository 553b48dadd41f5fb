"""Video consistency mVC_n, as VSPW's VC_perclip.py computes it (the definition in DESIGN.md).

For a video with C annotated frames in order, windows start at i = 0 .. C-n-1 (none if C <= n):
    G = pixels where gt_i == gt_{i+j} for all j in 1..n-1
    P = pixels where pred_i == pred_{i+j} for all j in 1..n-1
    VC_i = |G and P| / |G|
Ignore pixels are NOT removed (as in VSPW's script). mVC_n is the mean of VC_i over all windows of
all videos; a window with |G| = 0 gives NaN and is left out of the mean.

The metric streams: frames of a video must arrive in temporal order (the evaluation loader walks
each video in order), and only the last n frames of each unfinished video are kept. A window is
counted once a frame after it arrives, which reproduces VSPW's range (the window that ends on a
video's last frame is not counted). For several processes, give each one whole videos.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
from torchmetrics import Metric


class VideoConsistency(Metric):
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if n < 2:
            raise ValueError(f"VideoConsistency: n must be >= 2, got {n}")
        self.n = n
        self.add_state("vc_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("valid_windows", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("windows", default=torch.tensor(0), dist_reduce_fx="sum")
        self._frames: dict[str, deque] = {}  # video -> its last n (frame index, pred, gt)
        self._pending: dict[str, float] = {}  # video -> VC of its newest complete window

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        videos: Sequence[str],
        frame_indices: Sequence[int] | torch.Tensor,
    ) -> None:
        """preds, target: B H W (class ids; scores B C H W are argmaxed); one video id and frame
        index per item. Items must follow each video's temporal order."""
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(1)
        for pred, gt, video, t in zip(preds, target, videos, frame_indices, strict=True):
            self._add_frame(video, int(t), pred, gt)

    def _add_frame(self, video: str, t: int, pred: torch.Tensor, gt: torch.Tensor) -> None:
        frames = self._frames.setdefault(video, deque(maxlen=self.n))
        if frames and t <= frames[-1][0]:
            raise ValueError(
                f"VideoConsistency: frame {t} of video {video!r} came after frame {frames[-1][0]}; "
                "frames of a video must arrive in temporal order"
            )
        if video in self._pending:  # a later frame exists, so the pending window counts
            vc = self._pending.pop(video)
            self.windows += 1
            if vc == vc:  # not NaN
                self.vc_sum += vc
                self.valid_windows += 1
        frames.append((t, pred, gt))
        if len(frames) == self.n:
            self._pending[video] = window_consistency(
                torch.stack([f[1] for f in frames]), torch.stack([f[2] for f in frames])
            )

    def compute(self) -> torch.Tensor:
        if self.valid_windows == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.vc_sum / self.valid_windows

    def reset(self) -> None:
        super().reset()
        self._frames.clear()
        self._pending.clear()

    def forward(self, *args, **kwargs) -> None:
        """Streaming state cannot be computed per batch: `forward` only updates."""
        self.update(*args, **kwargs)


def window_consistency(preds: torch.Tensor, gts: torch.Tensor) -> float:
    """VC of one window of n frames (n H W each): |G and P| / |G|, NaN when |G| = 0."""
    same_gt = (gts[1:] == gts[0]).all(0)  # H W
    same_pred = (preds[1:] == preds[0]).all(0)
    denominator = same_gt.sum().item()
    if denominator == 0:
        return float("nan")
    return (same_gt & same_pred).sum().item() / denominator
