"""The suite's evaluation in one object: mIoU, per-class IoU, mVC_8 and mVC_16; optionally mIoU on
the "noisy" and "clean" subsets of the frames (supp. Fig. 4b; the data set codes each frame:
`ssltm.data.dataset.reference_subset`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics import SumMetric

from ssltm.metrics.miou import MeanIoU
from ssltm.metrics.video_consistency import VideoConsistency

VC_LENGTHS = (8, 16)
SUBSETS = ("clean", "noisy")  # subset code 0, 1 (-1: unknown, in neither)


class VideoSegmentationMetrics(nn.Module):
    """mIoU over one confusion matrix and mVC_n for n in VC_LENGTHS, fed video by video in order."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        self.miou = MeanIoU(num_classes, ignore_index)
        self.vc = nn.ModuleDict({str(n): VideoConsistency(n) for n in VC_LENGTHS})
        self.subset_miou = nn.ModuleDict({name: MeanIoU(num_classes, ignore_index) for name in SUBSETS})
        self.subset_frames = nn.ModuleDict({name: SumMetric() for name in SUBSETS})

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        videos: Sequence[str],
        frame_indices: Sequence[int] | torch.Tensor,
        subset: torch.Tensor | None = None,
    ) -> None:
        """preds: B H W class ids (or B C H W scores); target: B H W train ids (ignore_index where
        unknown). mIoU and mVC both read `target`: training, `src/eval.py` and `scripts/score.py`
        score the same labels the same way. (VSPW's VC_perclip.py compares raw masks, where the
        ignore values 0, 254 and 255 differ; here they are all ignore_index, which changes VC only
        at a pixel whose raw ignore value changes inside a window.) `subset` (B,) holds each
        frame's `reference_subset` code, for the subset mIoUs.
        """
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(1)
        self.miou.update(preds, target)
        for metric in self.vc.values():
            metric.update(preds, target, videos, frame_indices)
        if subset is not None:
            for code, name in enumerate(SUBSETS):
                rows = subset == code
                self.subset_frames[name].update(rows.sum())
                if rows.any():
                    self.subset_miou[name].update(preds[rows], target[rows])

    def compute(self) -> dict[str, float | list[float]]:
        """`mIoU`, `mVC8`, `mVC16`, `windows8`, `windows16`, `per_class_iou` (NaN: absent) and
        `confusion_matrix` (K x K+1 pixel counts, rows: truth, the last column: invalid ids)."""
        result: dict[str, float | list[float]] = {"mIoU": float(self.miou.compute())}
        for n, metric in self.vc.items():
            result[f"mVC{n}"] = float(metric.compute())
            result[f"windows{n}"] = int(metric.windows)
        result["per_class_iou"] = [float(v) for v in self.miou.per_class_iou()]
        result["confusion_matrix"] = self.miou.confmat.tolist()  # truth x prediction (+ invalid)
        if not self.subset_frames["clean"].update_called:  # no subset codes given
            return result
        for name, frames in self.subset_frames.items():
            count = int(frames.compute())
            result[f"{name}/mIoU"] = float(self.subset_miou[name].compute()) if count else float("nan")
            result[f"{name}_frames"] = count
        return result

    def reset(self) -> None:
        self.miou.reset()
        for metric in [*self.vc.values(), *self.subset_miou.values(), *self.subset_frames.values()]:
            metric.reset()
