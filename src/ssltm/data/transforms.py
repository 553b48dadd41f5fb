"""Geometric and photometric transforms applied to a whole clip at once.

A clip's frames, its reference frame and its label maps receive the SAME random scale, crop and
flip, so that pixels stay aligned across time (a requirement of STT, RFCE and of video metrics).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ssltm.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD


def to_tensor_images(images: list[np.ndarray]) -> torch.Tensor:
    """N arrays H W 3 (uint8) -> N 3 H W float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


def resize_clip(
    images: torch.Tensor, labels: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """images N 3 H W (float), labels M H W (long) -> (H, W) = size: bilinear with antialiasing for
    frames, nearest for labels; unchanged when already that size. The one resampling rule of a
    reduced resolution (`ClipTransform.resize`, scripts/resize_camvid.py)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images, labels
    images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    if labels is not None:
        labels = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()
    return images, labels


class ClipTransform:
    """Resize -> random scale -> random crop (padded if needed) -> random horizontal flip -> normalise.

    Args:
        resize: (H, W) every frame and label map is resized to first, in training and evaluation
            alike (bilinear with antialiasing for frames, nearest for labels), so that a reduced
            resolution is trained and scored as one data set; None keeps the files' size.
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
        resize: tuple[int, int] | None = None,
    ) -> None:
        self.resize = tuple(resize) if resize is not None else None
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.scale_range = tuple(scale_range) if scale_range is not None else None
        self.hflip = hflip
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor | None, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images: N 3 H W in [0, 1]; labels: M H W (long) or None. Returns them transformed."""
        if self.resize is not None:
            images, labels = resize_clip(images, labels, self.resize)
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


class ClipPhotometric:
    """Strong photometric augmentation of batched clips: colour jitter, grayscale, Gaussian blur.

    One random draw per clip (B), applied to all its frames and its reference alike, so that
    temporal cues survive; no geometry changes, so pixels stay aligned with the weak view.
    Works on normalised tensors (denormalise -> augment -> normalise).

    Args:
        brightness, contrast, saturation: jitter strength s (factor uniform in [1-s, 1+s]).
        grayscale_p: probability of turning a clip to grayscale.
        blur_p: probability of blurring a clip.
        blur_sigma: range of the blur's sigma, in pixels.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.grayscale_p, self.blur_p, self.blur_sigma = grayscale_p, blur_p, tuple(blur_sigma)
        self.mean = torch.tensor(mean).view(1, 1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 1, 3, 1, 1)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """clips: B N 3 H W (normalised; N = frames + reference) -> the same, augmented."""
        B = clips.shape[0]
        mean, std = self.mean.to(clips), self.std.to(clips)
        x = (clips * std + mean).clamp(0, 1)

        def factor(strength: float) -> torch.Tensor:
            return torch.empty(B, 1, 1, 1, 1, device=x.device).uniform_(1 - strength, 1 + strength)

        x = (x * factor(self.brightness)).clamp(0, 1)
        gray = _luminance(x)  # B N 1 H W
        m = gray.mean(dim=(1, 2, 3, 4), keepdim=True)
        x = ((x - m) * factor(self.contrast) + m).clamp(0, 1)
        gray = _luminance(x)
        x = ((x - gray) * factor(self.saturation) + gray).clamp(0, 1)
        to_gray = torch.rand(B, 1, 1, 1, 1, device=x.device) < self.grayscale_p
        x = torch.where(to_gray, _luminance(x).expand_as(x), x)
        for b in torch.nonzero(torch.rand(B) < self.blur_p).flatten().tolist():
            sigma = float(torch.empty(()).uniform_(*self.blur_sigma))
            x[b] = gaussian_blur(x[b], sigma)
        return (x - mean) / std


def _luminance(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ... 3 H W images -> ... 1 H W."""
    r, g, b = x.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of N C H W images (edge padding, kernel radius ~ 2 sigma)."""
    radius = max(1, int(2 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def cutmix_masks(
    batch: int, size: tuple[int, int], p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3), generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One CutMix box per sample, as UniMatch draws them: with probability `p` a box of `area`
    (share of the frame, uniform) and aspect `ratio` (h / w, log-uniform) at a uniform place.
    Returns B H W bool, True inside the box (where the partner clip shows through)."""
    H, W = size
    masks = torch.zeros(batch, H, W, dtype=torch.bool)
    for b in range(batch):
        if float(torch.rand((), generator=generator)) >= p:
            continue
        share = float(torch.empty(()).uniform_(*area, generator=generator))
        aspect = math.exp(float(torch.empty(()).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)))
        h = min(H, max(1, round(math.sqrt(share * H * W * aspect))))
        w = min(W, max(1, round(math.sqrt(share * H * W / aspect))))
        top = int(torch.randint(0, H - h + 1, (), generator=generator))
        left = int(torch.randint(0, W - w + 1, (), generator=generator))
        masks[b, top : top + h, left : left + w] = True
    return masks


def clip_cutmix(
    clips: torch.Tensor, masks: torch.Tensor, *per_pixel: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Clip-consistent CutMix: sample b takes the box `masks[b]` from sample b-1 (the batch rolled
    by one), on every one of its frames and its reference alike, and so do its per-pixel targets.

    clips: B N 3 H W (the T frames and the reference); masks: B H W bool; per_pixel: B ... H W
    tensors (pseudo-labels, confidences, a weak frame) mixed by the same boxes. Returns (clips,
    *per_pixel) mixed."""
    partner = torch.roll(torch.arange(clips.shape[0], device=clips.device), 1)
    masks = masks.to(clips.device)

    def mix(x: torch.Tensor) -> torch.Tensor:
        box = masks.view(masks.shape[0], *[1] * (x.dim() - 3), *masks.shape[1:])  # B 1.. H W
        return torch.where(box, x[partner], x)

    return (mix(clips), *(mix(x) for x in per_pixel))
