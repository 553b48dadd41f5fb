"""mIoU from one confusion matrix over the whole data set (the definition in DESIGN.md).

IoU_c = TP_c / (GT_c + PRED_c - TP_c); mIoU is the mean over the classes that occur in the ground
truth. Pixels whose ground truth is the ignore index are left out. A predicted value outside
[0, num_classes) counts as wrong (a miss for the true class, a false positive for none).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class MeanIoU(Metric):
    """Accumulates a num_classes x (num_classes + 1) confusion matrix (rows: truth, columns:
    prediction, the last column: invalid predictions). Summed across processes."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes + 1, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """preds: class ids (B H W) or scores (B C H W); target: B H W."""
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(1)
        if preds.shape != target.shape:
            raise ValueError(f"MeanIoU: predictions {tuple(preds.shape)} vs target {tuple(target.shape)}")
        valid = target != self.ignore_index
        truth = target[valid].long()
        if truth.numel() and (truth.min() < 0 or truth.max() >= self.num_classes):
            raise ValueError(
                f"MeanIoU: target values must be in [0, {self.num_classes}) or {self.ignore_index}; "
                f"got {truth.min().item()}..{truth.max().item()}"
            )
        pred = preds[valid].long()
        pred = torch.where((pred >= 0) & (pred < self.num_classes), pred, self.num_classes)
        index = truth * (self.num_classes + 1) + pred
        self.confmat += torch.bincount(index, minlength=self.confmat.numel()).view_as(self.confmat)

    def per_class_iou(self) -> torch.Tensor:
        """IoU per class (float64); NaN for classes absent from the ground truth."""
        cm = self.confmat.double()
        tp = cm.diagonal()
        gt = cm.sum(1)
        pred = cm[:, : self.num_classes].sum(0)
        iou = tp / (gt + pred - tp).clamp_min(1)
        return torch.where(gt > 0, iou, torch.full_like(iou, float("nan")))

    def compute(self) -> torch.Tensor:
        return self.per_class_iou().nanmean()
