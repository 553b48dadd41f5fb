"""What every training method shares: the loss on labelled clips, evaluation, optimisers.

A method receives a plain segmenter (`model`), a partial optimiser and a partial scheduler from the
config. Evaluation walks whole videos in order and reports mIoU, per-class IoU, mVC_8 and mVC_16
(`VideoSegmentationMetrics`); `last_eval` keeps the latest result for the entry points.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn
from torchmetrics import MeanMetric

from ssltm.constants import IGNORE_INDEX
from ssltm.data.samplers import evaluates_video
from ssltm.errors import NonFiniteLossError, NonFiniteOutputError
from ssltm.inference.passes import Inference
from ssltm.metrics.video_segmentation import SUBSETS, VideoSegmentationMetrics
from ssltm.utils.options import require

SUBSET_KEYS = tuple(f"{name}/mIoU" for name in SUBSETS)


class SegmentationMethod(pl.LightningModule):
    """Base class. Subclasses implement `training_loss` (the loss of one training batch).

    A loss that is not finite (NaN or inf, on any process) skips its step: no backward, no update,
    no teacher update. `max_nonfinite_steps` such steps in a row stop the run with
    `NonFiniteLossError`; the checkpoints already written are kept.

    Args:
        model: a segmenter: `model(frames, reference) -> SegmenterOutput` (models/segmenter.py);
            its `num_classes` is the method's (one source: the data set, through the model config).
        optimizer: partial optimiser, called with the parameters.
        scheduler: partial scheduler, called with the optimiser and `total_steps`; or None.
        aux_weight: weight of the auxiliary head's loss.
        inference: how evaluation covers a frame (whole or sliding window); default whole.
        max_nonfinite_steps: consecutive non-finite losses that stop the run (>= 1).
        backbone_lr_scale: the backbone's learning rate as a fraction of the optimiser's (the rest of
            the network trains at the optimiser's rate): below 1 for a pretrained encoder.
    """

    #: whether the method trains on unlabelled clips (the data module serves them only then)
    uses_unlabelled: bool = False

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        aux_weight: float = 0.4,
        inference: Inference | None = None,
        max_nonfinite_steps: int = 5,
        backbone_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        require("method.max_nonfinite_steps", max_nonfinite_steps)
        require("method.backbone_lr_scale", backbone_lr_scale)
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.num_classes = num_classes = model.num_classes
        self.aux_weight = aux_weight
        self.inference = inference or Inference()
        self.max_nonfinite_steps = max_nonfinite_steps
        self.backbone_lr_scale = backbone_lr_scale
        self.nonfinite_in_a_row = 0
        #: True while the current step was skipped for a non-finite loss (no optimiser update)
        self.step_skipped = False
        self.eval_metrics = VideoSegmentationMetrics(num_classes, IGNORE_INDEX)
        self.eval_loss = MeanMetric()
        #: metrics of further networks evaluated beside the main one (logged as <stage>/<name>/...)
        self.extra_eval_metrics = nn.ModuleDict()
        self.last_eval: dict | None = None
        #: the global step at which `last_eval` was computed (-1: never)
        self.last_eval_step = -1
        #: the current step's tensors for an image panel (`keep_panel`), returned with its output
        self.panel_tensors: dict[str, torch.Tensor] = {}

    # --- training ----------------------------------------------------------------------------
    def training_loss(self, batch: dict, batch_idx: int) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> dict | None:
        """{"loss", "panel"}: the loss, and the tensors offered for an image panel (`keep_panel`;
        callbacks read them from the step's output); None skips a non-finite step."""
        self.panel_tensors = {}
        # the forward pass updates buffers (BatchNorm statistics, GCC memory) before the loss is
        # known: a skipped step puts them back, or one NaN batch would poison evaluation
        buffers = [(b, b.detach().clone()) for b in self.buffers() if b.is_floating_point()]
        loss = self.skip_nonfinite(self.training_loss(batch, batch_idx))
        if loss is None:
            with torch.no_grad():
                for buffer, before in buffers:
                    buffer.copy_(before)
            return None
        return {"loss": loss, "panel": self.panel_tensors}

    def skip_nonfinite(self, loss: torch.Tensor) -> torch.Tensor | None:
        """The loss, or None (Lightning then skips backward and the update) when it is not finite
        on this or any other process."""
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)
        self.step_skipped = not finite
        if finite:
            self.nonfinite_in_a_row = 0
            return loss
        self.nonfinite_in_a_row += 1
        self.log("train/nonfinite_skipped", float(self.nonfinite_in_a_row), batch_size=1)
        rank_zero_warn(
            f"step {self.global_step}: the training loss is {loss.item()} on some process; step skipped "
            f"({self.nonfinite_in_a_row} in a row, the run stops at {self.max_nonfinite_steps})"
        )
        if self.nonfinite_in_a_row >= self.max_nonfinite_steps:
            first = self.global_step - self.nonfinite_in_a_row + 1
            raise NonFiniteLossError(
                f"training stopped: the loss was not finite in {self.nonfinite_in_a_row} steps in a row "
                f"(steps {first} to {self.global_step}; method.max_nonfinite_steps="
                f"{self.max_nonfinite_steps}). The skipped steps changed no weight, and the checkpoints "
                "written so far are kept. Try a lower optimizer.lr or gradient clipping "
                "(trainer.gradient_clip_val), and check the data."
            )
        return None

    def forward(self, frames: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(frames, reference)

    def supervised_loss(self, outputs: dict, label: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy on the query frame, the weighted auxiliary loss and the model's own
        losses (e.g. GCC's mse update), each already weighted by the model."""
        main = F.cross_entropy(outputs.logits, label, ignore_index=IGNORE_INDEX)
        aux = F.cross_entropy(outputs.aux_logits, label, ignore_index=IGNORE_INDEX)
        model_losses = outputs.losses
        total = main + self.aux_weight * aux + sum(model_losses.values())
        return {"loss": total, "ce": main, "aux": aux, **model_losses}

    def keep_panel(self, **tensors: torch.Tensor | None) -> None:
        """Offer the step's first sample of each tensor (B ...) for an image panel: `frame` a
        normalised 3 H W image, label maps H W, `*_logits` K H W. The step returns them in its
        output (`panel`); `runs/callbacks.ImagePanels` draws them when a panel is due."""
        self.panel_tensors = {name: value[0].detach() for name, value in tensors.items() if value is not None}

    def eval_network(self) -> nn.Module:
        """The network that evaluation uses (Mean Teacher returns its teacher by default)."""
        return self.model

    def extra_eval_networks(self) -> dict[str, nn.Module]:
        """Further networks to evaluate beside `eval_network`, by name (keys of extra_eval_metrics)."""
        return {}

    # --- evaluation --------------------------------------------------------------------------
    def _eval_step(self, batch: dict, stage: str) -> dict:
        meta = batch["meta"]
        if not evaluates_video(int(meta["video_index"][0])):  # a padding batch (fewer videos than processes)
            return {"panel": {}}
        shared = (meta["frame_indices"], torch.as_tensor(meta["reference_index"], device=batch["frames"].device))
        logits = self.inference(self.eval_network(), batch["frames"], batch["reference"], *shared)
        _require_finite(logits, meta)
        self.keep_panel(frame=batch["frames"][:, -1], ground_truth=batch["label"], prediction_logits=logits)
        loss = F.cross_entropy(logits, batch["label"], ignore_index=IGNORE_INDEX)
        # summed over the processes once, at the end: they may walk different numbers of batches
        self.eval_loss.update(loss, weight=batch["label"].shape[0])
        subset = meta.get("subset")
        self.eval_metrics.update(logits.argmax(1), batch["label"], meta["video"], meta["query"], subset=subset)
        for name, network in self.extra_eval_networks().items():
            logits = self.inference(network, batch["frames"], batch["reference"], *shared)
            _require_finite(logits, meta, name)
            self.extra_eval_metrics[name].update(
                logits.argmax(1), batch["label"], meta["video"], meta["query"], subset=subset
            )
        return {"panel": self.panel_tensors}

    def _eval_epoch_end(self, stage: str) -> None:
        self.log(f"{stage}/loss", self.eval_loss.compute())
        self.eval_loss.reset()
        for name, metrics in self.extra_eval_metrics.items():
            extra = metrics.compute()
            metrics.reset()
            self.log_dict({f"{stage}/{name}/{k}": extra[k] for k in ("mIoU", "mVC8", "mVC16")})
        result = self.eval_metrics.compute()
        self.eval_metrics.reset()
        self.log_dict({f"{stage}/{k}": result[k] for k in ("mIoU", "mVC8", "mVC16", *SUBSET_KEYS) if k in result})
        names = self._class_names()
        self.log_dict(
            {f"{stage}/iou/{n}": v for n, v in zip(names, result["per_class_iou"]) if v == v}
        )
        self.last_eval = {**result, "class_names": names}
        self.last_eval_step = self.global_step

    def _class_names(self) -> list[str]:
        datamodule = getattr(self.trainer, "datamodule", None)
        info = getattr(datamodule, "info", None)
        if info is not None and info.num_classes == self.num_classes:
            return list(info.classes)
        return [str(i) for i in range(self.num_classes)]

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        return self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        return self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # --- optimisation ------------------------------------------------------------------------
    def trainable_parameters(self):
        """The model's parameters; two groups when the backbone trains at its own rate."""
        backbone = getattr(self.model, "backbone", None)
        if self.backbone_lr_scale == 1.0 or backbone is None:
            return self.model.parameters()
        lr = self.optimizer_factory.keywords["lr"] * self.backbone_lr_scale
        in_backbone = {id(p) for p in backbone.parameters()}
        return [{"params": list(backbone.parameters()), "lr": lr},
                {"params": [p for p in self.model.parameters() if id(p) not in in_backbone]}]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.trainable_parameters())
        if not self.scheduler_factory:  # None, or the empty `scheduler=none` config
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _require_finite(logits: torch.Tensor, meta: dict, network: str = "") -> None:
    """Evaluation never scores NaN or infinite logits (argmax would read them as class 0)."""
    if not torch.isfinite(logits).all():
        which = f"the {network} network" if network else "the network"
        raise NonFiniteOutputError(
            f"{which} output NaN or infinite values on video {meta['video'][0]!r}: its weights are broken "
            "(a diverged run or a damaged checkpoint); no score is reported")
