"""Pictures of predictions: colour label maps, overlays, titled side-by-side panels.

Everything works on numpy uint8 images (H W 3) and integer label maps (H W); a data set's colours
come from its `DatasetInfo` (`info.colourize`), the one place where palettes are defined.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ssltm.constants import IMAGENET_MEAN, IMAGENET_STD
from ssltm.data.info import DatasetInfo

TITLE_HEIGHT = 14  # pixels of the caption strip above each tile


def to_uint8_image(frame: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """A normalised 3 H W tensor (as the data sets serve it) back to an H W 3 uint8 image."""
    mean = torch.tensor(mean, device=frame.device).view(3, 1, 1)
    std = torch.tensor(std, device=frame.device).view(3, 1, 1)
    image = (frame.detach().float() * std + mean).clamp(0, 1)
    return (image * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()


def overlay(image: np.ndarray, label: np.ndarray, info: DatasetInfo, alpha: float = 0.5) -> np.ndarray:
    """The image with the label map's colours blended in at `alpha`; ignored pixels stay as they are."""
    if image.shape[:2] != label.shape:
        raise ValueError(f"overlay: image {image.shape[:2]} and label {label.shape} differ in size")
    colour = info.colourize(label).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colour
    known = (label != info.ignore_index)[..., None]
    return np.where(known, blended + 0.5, image).astype(np.uint8)


def confidence_image(confidence: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Confidence in [0, 1] as grey levels; with a threshold, pixels below it are tinted red."""
    grey = (np.clip(confidence, 0, 1) * 255 + 0.5).astype(np.uint8)
    image = np.repeat(grey[..., None], 3, axis=-1)
    if threshold is not None:
        image[confidence < threshold] = (image[confidence < threshold] * np.array([1.0, 0.3, 0.3])).astype(np.uint8)
    return image


def disagreement_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """White where two label maps differ, black where they agree."""
    return np.repeat(((a != b) * 255).astype(np.uint8)[..., None], 3, axis=-1)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """The image below a black strip with `title` written in it."""
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + TITLE_HEIGHT))
    canvas.paste(Image.fromarray(image), (0, TITLE_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), title, fill=(255, 255, 255))
    return np.asarray(canvas)


def panel(
    tiles: list[tuple[str, np.ndarray]], columns: int | None = None, gap: int = 2, min_width: int = 160
) -> np.ndarray:
    """Titled tiles of one size side by side (in rows of `columns`), as one H W 3 image; tiles
    narrower than `min_width` are enlarged by a whole factor (nearest) so that titles fit."""
    if not tiles:
        raise ValueError("panel: no tiles")
    factor = -(-min_width // tiles[0][1].shape[1])
    if factor > 1:
        tiles = [(title, image.repeat(factor, 0).repeat(factor, 1)) for title, image in tiles]
    images = [titled(image, title) for title, image in tiles]
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError(f"panel: tiles differ in size: {[im.shape[:2] for im in images]}")
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    out = np.zeros((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return out


def confusion_matrix_image(confmat: np.ndarray, class_names: list[str], cell: int = 22) -> np.ndarray:
    """A K x K confusion matrix (rows: truth, columns: prediction) normalised per row, as a heat map
    with the class names along the left edge."""
    cm = np.asarray(confmat, np.float64)[:, : len(class_names)]
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(class_names)
    margin = 8 * max(len(n) for n in class_names) + 6
    canvas = Image.new("RGB", (margin + k * cell, k * cell + TITLE_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), "truth (rows) vs prediction (columns), per-row share", fill=(0, 0, 0))
    for i in range(k):
        draw.text((2, TITLE_HEIGHT + i * cell + cell // 3), class_names[i], fill=(0, 0, 0))
        for j in range(k):
            v = int(255 * (1 - rows[i, j]))
            x, y = margin + j * cell, TITLE_HEIGHT + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(v, v, 255))
    return np.asarray(canvas)


def save_png(path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path)
