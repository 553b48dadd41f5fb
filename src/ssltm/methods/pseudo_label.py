"""Supervised training that also learns from pseudo-labelled clips: the student of iterative
self-training (runs/iterative.py drives the stages)."""

from __future__ import annotations

from ssltm.constants import IGNORE_INDEX
from ssltm.methods.supervised import SupervisedMethod


class PseudoLabelMethod(SupervisedMethod):
    """Supervised training on the labelled clips and, when the data module serves them, on the
    pseudo-labelled clips (`batch["pseudo"]`) with weight `pseudo_weight`."""

    def __init__(self, *args, pseudo_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pseudo_weight = pseudo_weight

    def training_loss(self, batch: dict, batch_idx: int):
        loss = super().training_loss(batch, batch_idx)
        if "pseudo" not in batch:
            return loss
        pseudo = batch["pseudo"]
        if not bool((pseudo["label"] != IGNORE_INDEX).any()):  # no confident pixel in the batch
            return loss
        outputs = self.model(pseudo["frames"], pseudo["reference"], memory_labels=pseudo["label"])
        pseudo_loss = self.supervised_loss(outputs, pseudo["label"])["loss"]
        self.log("train/pseudo_loss", pseudo_loss, batch_size=pseudo["label"].shape[0])
        return loss + self.pseudo_weight * pseudo_loss
