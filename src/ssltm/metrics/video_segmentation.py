"""The suite's evaluation in one object: mIoU, per-class IoU, mVC_8 and mVC_16."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssltm.metrics.miou import MeanIoU
from ssltm.metrics.video_consistency import VideoConsistency

VC_LENGTHS = (8, 16)


class VideoSegmentationMetrics(nn.Module):
    """mIoU over one confusion matrix and mVC_n for n in VC_LENGTHS, fed video by video in order."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        self.miou = MeanIoU(num_classes, ignore_index)
        self.vc = nn.ModuleDict({str(n): VideoConsistency(n) for n in VC_LENGTHS})

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        videos: Sequence[str],
        frame_indices: Sequence[int] | torch.Tensor,
        vc_target: torch.Tensor | None = None,
    ) -> None:
        """preds: B H W class ids (or B C H W scores); target: B H W train ids.

        `vc_target` is the ground truth the consistency is measured on, when it differs from
        `target` (VSPW's script compares raw masks); defaults to `target`.
        """
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(1)
        self.miou.update(preds, target)
        for metric in self.vc.values():
            metric.update(preds, target if vc_target is None else vc_target, videos, frame_indices)

    def compute(self) -> dict[str, float | list[float]]:
        """`mIoU`, `mVC8`, `mVC16`, `windows8`, `windows16` and `per_class_iou` (NaN: absent)."""
        result: dict[str, float | list[float]] = {"mIoU": float(self.miou.compute())}
        for n, metric in self.vc.items():
            result[f"mVC{n}"] = float(metric.compute())
            result[f"windows{n}"] = int(metric.windows)
        result["per_class_iou"] = [float(v) for v in self.miou.per_class_iou()]
        return result

    def reset(self) -> None:
        self.miou.reset()
        for metric in self.vc.values():
            metric.reset()
