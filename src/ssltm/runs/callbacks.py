"""Callbacks that make a run visible: image panels of what the networks see and predict, and the
per-class IoU table and confusion matrix of each validation.

Pictures are written as PNGs into the run folder (`<output_dir>/panels/`, for people without
W&B) and sent to every logger that takes images: W&B (`log_image`, `log_table`) and TensorBoard
(`add_image`). The CSV logger gets the scalars only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

from ssltm.inference.visualize import confidence_image, confusion_matrix_image, panel, save_png, to_uint8_image
from ssltm.runs.lightning import RUN_LOG

#: panel tiles in drawing order: key offered by the method (`keep_panel`) -> title
TILES = {
    "frame": "frame",
    "ground_truth": "ground truth",
    "prediction": "prediction",
    "student": "student",
    "teacher": "teacher",
    "pseudo_label": "pseudo-label",
    "confidence": "confidence",
}


def log_picture(trainer: pl.Trainer, key: str, image: np.ndarray, caption: str = "") -> None:
    """Send one H W 3 uint8 picture to every logger that takes images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image], step=trainer.global_step, caption=[caption or key])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")


def save_picture(folder: Path | None, trainer: pl.Trainer, name: str, image: np.ndarray) -> None:
    """`<folder or default_root_dir/panels>/<name>.png`."""
    folder = folder or Path(trainer.default_root_dir) / "panels"
    folder.mkdir(parents=True, exist_ok=True)
    save_png(folder / f"{name}.png", image)


class ImagePanels(pl.Callback):
    """Every `every_n_steps` training steps, and at the first batch of each validation, a panel of
    the batch's first sample: frame | ground truth | student | teacher | pseudo-label | confidence
    (the tiles the method has: supervised training shows frame | ground truth | student).

    Args:
        every_n_steps: training steps between two panels (0: none in training).
        folder: where the PNGs go; None: `<trainer.default_root_dir or log_dir>/panels`.
        validation: draw the first validation batch too.
    """

    def __init__(self, every_n_steps: int = 100, folder: str | None = None, validation: bool = True) -> None:
        self.every_n_steps = every_n_steps
        self.folder = Path(folder) if folder else None
        self.validation = validation
        self._due = False

    # --- the step's output carries the tensors (`panel`); draw them when a panel is due -------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._due = bool(self.every_n_steps) and trainer.global_step % self.every_n_steps == 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._due:
            self._emit(trainer, pl_module, "train", outputs)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.validation and batch_idx == 0 and not trainer.sanity_checking:
            self._emit(trainer, pl_module, "val", outputs)

    # --- drawing --------------------------------------------------------------------------------
    def _emit(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, outputs) -> None:
        offered = outputs.get("panel") if isinstance(outputs, dict) else None
        if not offered:
            return
        tensors = {}
        for name, value in offered.items():  # the first sample's tensors, on the CPU
            value = value.detach().float().cpu()
            if name.endswith("_logits"):
                name, value = name[: -len("_logits")], value.argmax(0)
            tensors[name] = value
        info = getattr(getattr(trainer, "datamodule", None), "info", None)
        if info is None:  # trained from plain dataloaders: no palette to draw with
            return
        threshold = getattr(pl_module, "confidence_threshold", None)
        tiles = []
        for key, title in TILES.items():
            if key not in tensors:
                continue
            value = tensors[key]
            if key == "frame":
                image = to_uint8_image(value)
            elif key == "confidence":
                image = confidence_image(value.numpy(), threshold)
                title = f"{title} (red < {threshold})" if threshold is not None else title
            else:
                image = info.colourize(value.numpy().astype(np.uint8))
            tiles.append((title, image))
        picture = panel(tiles, columns=3 if len(tiles) > 4 else None)
        save_picture(self.folder, trainer, f"{stage}_step{trainer.global_step:06d}", picture)
        log_picture(trainer, f"{stage}/panel", picture, " | ".join(t for t, _ in tiles))


class EvaluationReport(pl.Callback):
    """After each validation (not the sanity check): the per-class IoU as a table (W&B) and the
    confusion matrix as a picture (PNG in `<output>/panels`, W&B, TensorBoard)."""

    def __init__(self, folder: str | None = None) -> None:
        self.folder = Path(folder) if folder else None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        result = getattr(pl_module, "last_eval", None)
        if trainer.sanity_checking or not result or "confusion_matrix" not in result:
            return
        RUN_LOG.info("validation at step %d: mIoU %.2f, mVC_8 %.2f", trainer.global_step, 100 * result["mIoU"],
                     100 * result["mVC8"])
        names = result["class_names"]
        rows = [[n, None if math.isnan(v) else round(100 * v, 2)] for n, v in zip(names, result["per_class_iou"])]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="val/per_class_iou", columns=["class", "IoU"], data=rows, step=trainer.global_step)
        picture = confusion_matrix_image(np.asarray(result["confusion_matrix"]), names)
        save_picture(self.folder, trainer, f"val_confusion_step{trainer.global_step:06d}", picture)
        log_picture(trainer, "val/confusion_matrix", picture)
