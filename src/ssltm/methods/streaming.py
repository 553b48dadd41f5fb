"""Segmenting a video as it streams in, one frame at a time, with the temporal context of evaluation.

For each new frame t the network sees the clip and the reference frame that evaluation builds
(`ClipSampler.clip_indices(t)`, `reference_index(t)` at `eval_distance`): both lie at or before t,
so a video can be segmented in one pass, in order. Only the frames that later clips still need are
kept (the last max((T-1)s, d) + 1), so memory stays flat however long the video is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ssltm.data.clips import ClipSampler
from ssltm.data.transforms import ClipTransform, to_tensor_images
from ssltm.methods.inference import Inference


class StreamingSegmenter:
    """Args:
    network: a segmenter, `network(frames B T 3 H W, reference B 3 H W)["logits"]`.
    sampler: which earlier frames make the clip and the reference of a frame.
    transform: the evaluation transform (normalisation) of the data the network was trained on.
    inference: whole frame or sliding window, as in evaluation.
    device: where the network runs.
    """

    def __init__(
        self,
        network: nn.Module,
        sampler: ClipSampler,
        transform: ClipTransform,
        inference: Inference | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.network = network.eval().to(device)
        self.sampler = sampler
        self.transform = transform
        self.inference = inference or Inference()
        self.device = torch.device(device)
        self.history = max((sampler.num_frames - 1) * sampler.step, sampler.eval_distance)
        self.reset()

    def reset(self) -> None:
        """Forget the frames seen; the next frame starts a new video."""
        self.frames: dict[int, torch.Tensor] = {}  # frame index -> 3 H W, normalised
        self.t = -1

    @torch.no_grad()
    def push(self, image: np.ndarray) -> torch.Tensor:
        """The next frame of the video (H W 3 uint8) -> its logits, K H W (on the CPU)."""
        self.t += 1
        t = self.t
        frame, _ = self.transform(to_tensor_images([image]), None, train=False)  # 1 3 H W
        self.frames[t] = frame[0].to(self.device)
        for old in [i for i in self.frames if i < t - self.history]:
            del self.frames[old]
        clip = torch.stack([self.frames[i] for i in self.sampler.clip_indices(t, t + 1)])  # T 3 H W
        reference = self.frames[self.sampler.reference_index(t, t + 1, train=False)]  # 3 H W
        logits = self.inference(self.network, clip[None], reference[None])  # 1 K H W
        return logits[0].float().cpu()
