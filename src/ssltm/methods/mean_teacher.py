"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) for semi-supervised video segmentation.

As SSLTM trains it (Lao et al., CVPR 2023, supplementary Sec. 2.5): a student and its teacher in
one run. The teacher is an exponential moving average of the student's parameters AND buffers
(batch-norm statistics, the GCC memory), never trained by gradients and always in eval mode. It
labels weakly augmented unlabelled clips; pixels whose confidence reaches `confidence_threshold`
become pseudo-labels for the student, which sees a strongly augmented (photometric only, so pixels
stay aligned) version of the same clips. The unsupervised loss weight ramps up. The GCC memory is
updated from the labelled pixels and from the confident pseudo-labels.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ssltm.constants import IGNORE_INDEX
from ssltm.methods.weak_to_strong import WeakToStrongMethod, pseudo_labels, sigmoid_rampup
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics
from ssltm.utils.options import require

__all__ = ["MeanTeacherMethod", "pseudo_labels", "sigmoid_rampup"]


class MeanTeacherMethod(WeakToStrongMethod):
    """Args (beyond `WeakToStrongMethod`'s, whose pseudo-labels come from the EMA teacher here):
    ema_decay: the teacher's decay; the schedule is min(1 - 1/(step+1), ema_decay).
    eval_network: `teacher` or `student`, the network of val/mIoU and of `src/eval.py`; the other
        one is logged as val/<name>/mIoU too.
    """

    def __init__(self, model: nn.Module, *args, ema_decay: float = 0.99, eval_network: str = "teacher",
                 **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        require("method.ema_decay", ema_decay)
        require("method.eval_network", eval_network)
        self.teacher = copy.deepcopy(model)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.ema_decay = ema_decay
        self.eval_with = eval_network
        self.register_buffer("ema_step", torch.zeros((), dtype=torch.long))
        other = "student" if eval_network == "teacher" else "teacher"
        self.extra_eval_metrics[other] = VideoSegmentationMetrics(self.num_classes, IGNORE_INDEX)

    # --- the teacher -------------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # batch norm and dropout of the teacher stay in eval mode
        return self

    def decay(self, step: int) -> float:
        return min(1.0 - 1.0 / (step + 1), self.ema_decay)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """teacher <- d * teacher + (1 - d) * student, for parameters and floating buffers; other
        buffers (counters) are copied. With several processes, DDP broadcasts rank 0's buffers
        (the teacher's included) before every forward, so all processes use the same teacher."""
        d = self.decay(int(self.ema_step))
        for t, s in zip(self.teacher.parameters(), self.model.parameters(), strict=True):
            t.mul_(d).add_(s.detach(), alpha=1.0 - d)
        for t, s in zip(self.teacher.buffers(), self.model.buffers(), strict=True):
            if t.dtype.is_floating_point:
                t.mul_(d).add_(s, alpha=1.0 - d)
            else:
                t.copy_(s)
        self.ema_step += 1

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if not self.step_skipped:  # a step skipped for a non-finite loss leaves the teacher too
            self.update_teacher()

    def eval_network(self) -> nn.Module:
        return self.teacher if self.eval_with == "teacher" else self.model

    def extra_eval_networks(self) -> dict[str, nn.Module]:
        return {"student": self.model} if self.eval_with == "teacher" else {"teacher": self.teacher}

    # --- pseudo-labels ---------------------------------------------------------------------
    def pseudo_logits(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.teacher(frames, reference).logits

    def extra_logs(self) -> dict:
        return {"train/ema_decay": self.decay(int(self.ema_step))}
