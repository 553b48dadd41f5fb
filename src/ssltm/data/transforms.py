"""Geometric and photometric transforms applied to a whole clip at once.

A clip's frames, its reference frame and its label maps receive the SAME random scale, crop and
flip, so that pixels stay aligned across time (a requirement of STT, RFCE and of video metrics).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ssltm.data.info import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor_images(images: list[np.ndarray]) -> torch.Tensor:
    """N arrays H W 3 (uint8) -> N 3 H W float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


class ClipTransform:
    """Random scale -> random crop (padded if needed) -> random horizontal flip -> normalise.

    Args:
        crop_size: (H, W) of the output in training; None keeps the input size.
        scale_range: (min, max) random rescale factor in training; None for no rescale.
        hflip: flip with probability 0.5 in training. Keep False when left/right carries meaning
            (the synthetic set's drift classes).
        mean, std: normalisation, per channel.
    """

    def __init__(
        self,
        crop_size: tuple[int, int] | None = None,
        scale_range: tuple[float, float] | None = None,
        hflip: bool = False,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.scale_range = tuple(scale_range) if scale_range is not None else None
        self.hflip = hflip
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor | None, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images: N 3 H W in [0, 1]; labels: M H W (long) or None. Returns them transformed."""
        if train:
            images, labels = self.random_geometry(images, labels)
        return (images - self.mean) / self.std, labels

    def random_geometry(
        self, images: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.scale_range is not None:
            scale = float(torch.empty(()).uniform_(*self.scale_range))
            h, w = images.shape[-2:]
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            if labels is not None:
                labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
        if self.crop_size is not None:
            images, labels = random_crop(images, labels, self.crop_size)
        if self.hflip and bool(torch.rand(()) < 0.5):
            images = images.flip(-1)
            labels = labels.flip(-1) if labels is not None else None
        return images, labels


def random_crop(
    images: torch.Tensor, labels: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One random crop window for all images and labels; pads (zeros / ignore) when too small."""
    ch, cw = size
    h, w = images.shape[-2:]
    ph, pw = max(ch - h, 0), max(cw - w, 0)
    if ph or pw:
        images = F.pad(images, (0, pw, 0, ph), value=0.0)
        if labels is not None:
            labels = F.pad(labels, (0, pw, 0, ph), value=IGNORE_INDEX)
        h, w = h + ph, w + pw
    top = int(torch.randint(0, h - ch + 1, ()))
    left = int(torch.randint(0, w - cw + 1, ()))
    images = images[..., top : top + ch, left : left + cw]
    labels = labels[..., top : top + ch, left : left + cw] if labels is not None else None
    return images, labels
