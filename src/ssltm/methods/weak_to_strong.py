"""What Mean Teacher, FixMatch and UniMatch share: pseudo-labels from a weak view of the unlabelled
clips teach the student on a strong view of the same clips.

Per step: the supervised loss on the labelled clips; the pseudo-labelling network (`pseudo_logits`:
an EMA teacher for Mean Teacher, the student itself without gradient for FixMatch) labels the
weakly augmented unlabelled clips, pixels whose confidence reaches `confidence_threshold` become
targets; the strong view is the same clips photometrically augmented and, with `cutmix_p` > 0,
mixed with a partner clip by one CutMix box per clip (the same box on every frame, the reference
and the targets: `data/transforms.clip_cutmix`); the student learns the targets on the strong view
with weight `unsup_weight * sigmoid_rampup(step, rampup_steps)`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ssltm.constants import IGNORE_INDEX
from ssltm.data.transforms import ClipPhotometric, clip_cutmix, cutmix_masks
from ssltm.errors import ConfigError
from ssltm.inference.passes import Inference
from ssltm.methods.base import SegmentationMethod
from ssltm.metrics.pseudo_labels import PseudoLabelTally
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


@contextlib.contextmanager
def features_perturbed(model: nn.Module, fp_at: str, perturb: Callable[[torch.Tensor], torch.Tensor]):
    """Within the block, the model's features pass through `perturb` (N C h w -> the same):
    `fp_at=encoder`, every level of the backbone's output; `fp_at=head`, the input of the classifier
    head, or of the decoder where the decoder makes the logits (the Segmenter baseline)."""
    if fp_at == "encoder":
        handle = model.backbone.register_forward_hook(lambda module, args, levels: [perturb(x) for x in levels])
    else:
        reader = getattr(model, "head", None) or getattr(model, "decoder", None)
        if reader is None:
            raise ConfigError(f"method.fp_at=head: {type(model).__name__} has no `head` or `decoder` whose input "
                              "the feature perturbation could drop out; use method.fp_at=encoder")
        handle = reader.register_forward_pre_hook(lambda module, args: (perturb(args[0]), *args[1:]))
    try:
        yield
    finally:
        handle.remove()


class WeakToStrongMethod(SegmentationMethod):
    """Args (beyond `SegmentationMethod`'s):
    confidence_threshold: confidence needed for a pseudo-label, in [0, 1].
    unsup_weight: weight of the unsupervised loss after the ramp-up.
    rampup_steps: steps of the sigmoid ramp-up of the unsupervised weight.
    strong_augmentation: photometric augmentation of the strong view.
    cutmix_p: probability of a CutMix box per unlabelled clip in the strong view (0: none).
    gcc_from_pseudo_labels: update the GCC memory from confident pseudo-labels too.
    """

    uses_unlabelled = True

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None,
        aux_weight: float = 0.4,
        confidence_threshold: float = 0.9,
        unsup_weight: float = 1.0,
        rampup_steps: int = 200,
        strong_augmentation: ClipPhotometric | None = None,
        cutmix_p: float = 0.0,
        gcc_from_pseudo_labels: bool = True,
        inference: Inference | None = None,
        max_nonfinite_steps: int = 5,
        backbone_lr_scale: float = 1.0,
    ) -> None:
        super().__init__(model, optimizer, scheduler, aux_weight, inference, max_nonfinite_steps, backbone_lr_scale)
        require("method.confidence_threshold", confidence_threshold)
        require("method.cutmix_p", cutmix_p)
        self.confidence_threshold = confidence_threshold
        self.unsup_weight = unsup_weight
        self.rampup_steps = rampup_steps
        self.strong = strong_augmentation or ClipPhotometric()
        self.cutmix_p = cutmix_p
        self.gcc_from_pseudo_labels = gcc_from_pseudo_labels
        self.pseudo_tally = PseudoLabelTally(self.num_classes)

    def pseudo_logits(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """The pseudo-labelling network's logits on the weak view (B K H W), without gradient."""
        raise NotImplementedError

    def training_loss(self, batch: dict, batch_idx: int):
        labelled, unlabelled = batch["labelled"], batch["unlabelled"]
        outputs = self.model(labelled["frames"], labelled["reference"], memory_labels=labelled["label"])
        losses = self.supervised_loss(outputs, labelled["label"])

        with torch.no_grad():
            weak_logits = self.pseudo_logits(unlabelled["frames"], unlabelled["reference"])
            targets, confidence = pseudo_labels(weak_logits, self.confidence_threshold)
        # what the panels and statistics compare, mixed by the same boxes as the strong view
        seen = {"weak_frame": unlabelled["frames"][:, -1], "weak": weak_logits.argmax(1), "targets": targets,
                "confidence": confidence}
        if unlabelled.get("hidden_label") is not None:
            seen["hidden"] = unlabelled["hidden_label"]
        unmixed_targets = targets
        frames, reference, seen = self.strong_view(unlabelled["frames"], unlabelled["reference"], seen)
        seen["unmixed_targets"] = unmixed_targets
        targets = seen["targets"]
        with self.strong_stream(0):
            student = self.model(frames, reference, memory_labels=targets if self.gcc_from_pseudo_labels else None)
        unsup, unsup_parts = self.combined_unsupervised_loss(
            self.unsupervised_loss(student.logits, targets), unlabelled, seen)
        weight = self.unsup_weight * sigmoid_rampup(self.global_step, self.rampup_steps)
        model_losses = sum(student.losses.values()) if student.losses else 0.0
        total = losses["loss"] + weight * unsup + model_losses
        self.keep_panel(  # an unlabelled clip: what the pseudo-labels taught the student
            frame=seen["weak_frame"], ground_truth=seen.get("hidden"), student_logits=student.logits,
            teacher=seen["weak"], pseudo_label=targets, confidence=seen["confidence"],
        )

        batch_size = labelled["label"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=batch_size)
        logged = {f"train/sup_{k}": v for k, v in losses.items()}
        logged.update(self.pseudo_label_stats(targets, seen.get("hidden")))
        if seen.get("hidden") is not None:
            self.pseudo_tally.add(targets, seen["hidden"])
        trainer = self._trainer  # None when a test calls the step by hand
        if trainer is not None and batch_idx + 1 == trainer.num_training_batches:  # the epoch's last step
            logged.update(self.pseudo_rates_of_the_epoch())
        logged.update({"train/unsup": unsup, "train/unsup_weight": weight, **self.extra_logs()})
        logged.update({f"train/unsup_{k}": v for k, v in unsup_parts.items()})
        self.log_dict(logged, batch_size=batch_size)
        return total

    def pseudo_rates_of_the_epoch(self) -> dict[str, float]:
        """Per-class pseudo-label coverage and accuracy over the epoch's steps (counts summed over
        the processes), logged at its last step, then reset: a class is absent from most batches,
        so a per-step rate would be mostly undefined."""
        counts = self.trainer.strategy.reduce(self.pseudo_tally.counts.to(self.device), reduce_op="sum")
        rates = self.pseudo_tally.rates(self._class_names(), counts)
        self.pseudo_tally.reset()
        return rates

    def extra_logs(self) -> dict:
        return {}

    def strong_stream(self, index: int) -> contextlib.AbstractContextManager:
        """What the student's forward on strong view `index` runs under: nothing here; UniMatch V2
        drops complementary feature channels in its two views."""
        return contextlib.nullcontext()

    def combined_unsupervised_loss(self, strong: torch.Tensor, unlabelled: dict, seen: dict
                                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The unsupervised loss from the strong view's, and its parts to log: the strong view's
        alone here (UniMatch adds its own streams)."""
        return strong, {}

    def strong_view(self, frames: torch.Tensor, reference: torch.Tensor, per_pixel: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The student's view: the same clips and references photometrically augmented together,
        then (cutmix_p > 0) CutMix-ed with their partner clips; `per_pixel` (B ... H W: targets,
        confidences, ...) is mixed by the same boxes."""
        clip = self.strong(torch.cat([frames, reference[:, None]], 1))  # B T+1 3 H W
        if self.cutmix_p > 0:
            masks = cutmix_masks(clip.shape[0], tuple(clip.shape[-2:]), p=self.cutmix_p)
            clip, *mixed = clip_cutmix(clip, masks, *per_pixel.values())
            per_pixel = dict(zip(per_pixel, mixed))
        return clip[:, :-1], clip[:, -1], per_pixel

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


class FixMatchMethod(WeakToStrongMethod):
    """FixMatch (Sohn et al., NeurIPS 2020) adapted to segmentation as in UniMatch's baseline:
    the student's own prediction on the weak view (no EMA teacher, no gradient) gives the
    pseudo-labels of the strong view (photometric + CutMix)."""

    def pseudo_logits(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.model(frames, reference).logits  # train mode, as FixMatch; no GCC update here


class UniMatchMethod(FixMatchMethod):
    """UniMatch (Yang et al., CVPR 2023): FixMatch with two strong views, each with its own
    photometric draw and CutMix box, and a feature-perturbation stream: the weak view again, with
    channel dropout (`fp_dropout`) on the features the classifier head reads (`fp_at=head`: for
    SSLTM the fused query features, after STT, context and GCC; for the other models their
    decoder's output; for the Segmenter baseline, which has no head, its mask decoder's input), or
    on every level of the backbone's output (`fp_at=encoder`, UniMatch's placement). The unsupervised loss is
    `strong_share / 2` per strong view and `1 - strong_share` for the perturbed features
    (UniMatch: 0.25, 0.25, 0.5). The GCC memory learns from the first strong view's pseudo-labels
    only (one update per step, as in the other methods)."""

    def __init__(self, *args, fp_dropout: float = 0.5, strong_share: float = 0.5, fp_at: str = "head",
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        require("method.fp_dropout", fp_dropout)
        require("method.strong_share", strong_share)
        require("method.fp_at", fp_at)
        self.fp_dropout, self.strong_share, self.fp_at = fp_dropout, strong_share, fp_at

    def perturbed_logits(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """The student on the weak view with Dropout2d on the features `fp_at` names: `head`, the
        classifier head's input (after the temporal modules), or `encoder`, every level of the
        backbone's output (UniMatch's own choice, before the neck and the temporal modules)."""
        def dropped(x: torch.Tensor) -> torch.Tensor:
            return F.dropout2d(x, self.fp_dropout, training=True)

        with features_perturbed(self.model, self.fp_at, dropped):
            return self.model(frames, reference).logits

    def combined_unsupervised_loss(self, strong: torch.Tensor, unlabelled: dict, seen: dict
                                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The first strong view's loss, a second strong view's and the perturbed-feature stream's:
        `strong_share / 2` each for the strong views, the rest for the perturbed features."""
        targets = seen["unmixed_targets"]  # the weak view's pseudo-labels, before any CutMix
        frames, reference, mixed = self.strong_view(unlabelled["frames"], unlabelled["reference"],
                                                    {"targets": targets})
        second = self.unsupervised_loss(self.model(frames, reference).logits, mixed["targets"])
        fp = self.unsupervised_loss(self.perturbed_logits(unlabelled["frames"], unlabelled["reference"]), targets)
        total = (self.strong_share / 2) * (strong + second) + (1 - self.strong_share) * fp
        return total, {"strong1": strong, "strong2": second, "fp": fp}
