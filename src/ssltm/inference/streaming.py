"""Segmenting a video as it streams in, one frame at a time, with the temporal context of evaluation.

For each new frame t the network sees the clip and the reference frame that evaluation builds
(`ClipSampler.clip_indices(t)`, `reference_index(t)` at `eval_distance`): both lie at or before t,
so a video can be segmented in one pass, in order. Only the frames that later clips still need are
kept (the last max((T-1)s, d) + 1), so memory stays flat however long the video is.

Networks that split into a per-frame `encode` and a clip-level `decode` (SSLTM) are not rerun on
every frame of every clip: each frame is encoded once, when it arrives, and its features are
cached by frame index for the later clips that contain it (or use it as their reference). A
frame then costs one backbone pass plus the temporal modules. The sliding-window inference
always recomputes (its windows cut the frames).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ssltm.data.clips import ClipSampler
from ssltm.data.transforms import ClipTransform, to_tensor_images
from ssltm.errors import NonFiniteOutputError
from ssltm.inference.passes import Inference
from ssltm.models.segmenter import select_frames


class StreamingSegmenter:
    """Args:
    network: a segmenter, `network(frames B T 3 H W, reference B 3 H W).logits`.
    sampler: which earlier frames make the clip and the reference of a frame.
    transform: the evaluation transform (normalisation) of the data the network was trained on.
    inference: whole frame or sliding window, as in evaluation.
    device: where the network runs.
    cache_features: reuse per-frame features across clips when the network allows it.
    """

    def __init__(
        self,
        network: nn.Module,
        sampler: ClipSampler,
        transform: ClipTransform,
        inference: Inference | None = None,
        device: str | torch.device = "cpu",
        cache_features: bool = True,
    ) -> None:
        self.network = network.eval().to(device)
        self.sampler = sampler
        self.transform = transform
        self.inference = inference or Inference()
        self.device = torch.device(device)
        self.history = max((sampler.num_frames - 1) * sampler.step, sampler.eval_distance)
        self.cache_features = (
            cache_features and self.inference.mode == "whole" and hasattr(network, "encode") and hasattr(network, "decode")
        )
        self.reset()

    def reset(self) -> None:
        """Forget the frames seen; the next frame starts a new video."""
        self.frames: dict[int, torch.Tensor] = {}  # frame index -> 3 H W normalised, or its encoding
        self.t = -1

    @torch.no_grad()
    def push(self, image: np.ndarray) -> torch.Tensor:
        """The next frame of the video (H W 3 uint8) -> its logits, K H W (on the CPU), at the
        frame's own size (upsampled when the data's transform resizes frames)."""
        self.t += 1
        t = self.t
        frame, _ = self.transform(to_tensor_images([image]), None, train=False)  # 1 3 H W
        frame = frame.to(self.device)
        self.frames[t] = self.network.encode(frame) if self.cache_features else frame[0]
        for old in [i for i in self.frames if i < t - self.history]:
            del self.frames[old]
        indices = self.sampler.clip_indices(t, t + 1)
        reference = self.sampler.reference_index(t, t + 1, train=False)
        if self.cache_features:
            logits = self._decode_cached(indices, reference, tuple(frame.shape[-2:]))
        else:
            clip = torch.stack([self.frames[i] for i in indices])  # T 3 H W
            logits = self.inference(self.network, clip[None], self.frames[reference][None])  # 1 K H W
        if not torch.isfinite(logits).all():
            raise NonFiniteOutputError(f"the network output NaN or infinite values on frame {t}: its weights are broken")
        if tuple(logits.shape[-2:]) != image.shape[:2]:  # a network trained on resized frames
            logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
        return logits[0].float().cpu()

    def _decode_cached(self, indices: list[int], reference: int, size: tuple[int, int]) -> torch.Tensor:
        needed = self.network.frames_needed()
        wanted = select_frames(torch.tensor([indices]), torch.tensor([reference]), needed)[0].tolist()  # n
        features = torch.cat([self.frames[i][0] for i in wanted])[None]  # 1 n C h w
        aux = torch.cat([self.frames[i][1] for i in wanted])[None]  # 1 n K h' w'
        return self.network.decode(features, aux, needed.clip_frames(len(indices)), size).logits  # 1 K H W
