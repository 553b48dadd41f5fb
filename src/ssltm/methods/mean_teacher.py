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
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.constants import IGNORE_INDEX
from ssltm.data.transforms import ClipPhotometric
from ssltm.inference.passes import Inference
from ssltm.methods.base import SegmentationMethod
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics
from ssltm.utils.options import require


def pseudo_labels(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """B K H W logits -> (B H W labels with IGNORE_INDEX below the threshold, B H W confidence)."""
    confidence, labels = logits.softmax(1).max(1)
    return labels.masked_fill(confidence < threshold, IGNORE_INDEX), confidence


def sigmoid_rampup(step: int, length: int) -> float:
    """exp(-5 (1 - t)^2) for t = step / length in [0, 1] (Laine & Aila; Tarvainen & Valpola)."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class MeanTeacherMethod(SegmentationMethod):
    """Args (beyond `SegmentationMethod`'s):
    ema_decay: the teacher's decay; the schedule is min(1 - 1/(step+1), ema_decay).
    confidence_threshold: teacher confidence needed for a pseudo-label, in [0, 1].
    unsup_weight: weight of the unsupervised loss after the ramp-up.
    rampup_steps: steps of the sigmoid ramp-up of the unsupervised weight.
    strong_augmentation: photometric augmentation of the student's view.
    eval_network: `teacher` or `student`, the network of val/mIoU and of `src/eval.py`; the other
        one is logged as val/<name>/mIoU too.
    gcc_from_pseudo_labels: update the GCC memory from confident pseudo-labels too.
    """

    uses_unlabelled = True

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None,
        aux_weight: float = 0.4,
        ema_decay: float = 0.99,
        confidence_threshold: float = 0.9,
        unsup_weight: float = 1.0,
        rampup_steps: int = 200,
        strong_augmentation: ClipPhotometric | None = None,
        eval_network: str = "teacher",
        gcc_from_pseudo_labels: bool = True,
        inference: Inference | None = None,
        max_nonfinite_steps: int = 5,
    ) -> None:
        super().__init__(model, optimizer, scheduler, aux_weight, inference, max_nonfinite_steps)
        require("method.confidence_threshold", confidence_threshold)
        require("method.ema_decay", ema_decay)
        require("method.eval_network", eval_network)
        self.teacher = copy.deepcopy(model)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.ema_decay = ema_decay
        self.confidence_threshold = confidence_threshold
        self.unsup_weight = unsup_weight
        self.rampup_steps = rampup_steps
        self.strong = strong_augmentation or ClipPhotometric()
        self.eval_with = eval_network
        self.gcc_from_pseudo_labels = gcc_from_pseudo_labels
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

    # --- training ----------------------------------------------------------------------------
    def training_loss(self, batch: dict, batch_idx: int):
        labelled, unlabelled = batch["labelled"], batch["unlabelled"]
        outputs = self.model(labelled["frames"], labelled["reference"], memory_labels=labelled["label"])
        losses = self.supervised_loss(outputs, labelled["label"])

        with torch.no_grad():
            teacher_logits = self.teacher(unlabelled["frames"], unlabelled["reference"]).logits
            targets, confidence = pseudo_labels(teacher_logits, self.confidence_threshold)
        frames, reference = self.strong_view(unlabelled["frames"], unlabelled["reference"])
        student = self.model(frames, reference, memory_labels=targets if self.gcc_from_pseudo_labels else None)
        unsup = self.unsupervised_loss(student.logits, targets)
        weight = self.unsup_weight * sigmoid_rampup(self.global_step, self.rampup_steps)
        model_losses = sum(student.losses.values()) if student.losses else 0.0
        total = losses["loss"] + weight * unsup + model_losses
        self.keep_panel(  # an unlabelled clip: what the teacher taught the student
            frame=unlabelled["frames"][:, -1], ground_truth=unlabelled.get("hidden_label"),
            student_logits=student.logits, teacher_logits=teacher_logits, pseudo_label=targets,
            confidence=confidence,
        )

        batch_size = labelled["label"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=batch_size)
        logged = {f"train/sup_{k}": v for k, v in losses.items()}
        logged.update(self.pseudo_label_stats(targets, unlabelled.get("hidden_label")))
        logged.update({"train/unsup": unsup, "train/unsup_weight": weight, "train/ema_decay": self.decay(int(self.ema_step))})
        self.log_dict(logged, batch_size=batch_size)
        return total

    def strong_view(self, frames: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's view: the same clip and reference, photometrically augmented together."""
        clip = self.strong(torch.cat([frames, reference[:, None]], 1))  # B T+1 3 H W
        return clip[:, :-1], clip[:, -1]

    @staticmethod
    def unsupervised_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the confident pixels; 0 (with a graph) when none is confident."""
        if not bool((targets != IGNORE_INDEX).any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)

    @staticmethod
    def pseudo_label_stats(targets: torch.Tensor, hidden: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Coverage (share of pixels with a pseudo-label) and, where the hidden ground truth is
        known, the pseudo-labels' accuracy against it."""
        kept = targets != IGNORE_INDEX
        stats = {"train/pseudo_coverage": kept.float().mean()}
        if hidden is not None:
            known = kept & (hidden != IGNORE_INDEX)
            if bool(known.any()):
                stats["train/pseudo_accuracy"] = (targets[known] == hidden[known]).float().mean()
        return stats
