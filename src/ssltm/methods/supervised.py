"""Supervised training on the labelled clips alone.

With `data.labels=one_per_video` this is the lower bound of the semi-supervised setting; with
`data.labels=all` (every frame labelled) it is the upper bound.
"""

from __future__ import annotations

from ssltm.methods.base import SegmentationMethod


class SupervisedMethod(SegmentationMethod):
    def training_loss(self, batch: dict, batch_idx: int):
        labelled = batch["labelled"]
        outputs = self.model(labelled["frames"], labelled["reference"], memory_labels=labelled["label"])
        losses = self.supervised_loss(outputs, labelled["label"])
        self.keep_panel(frame=labelled["frames"][:, -1], ground_truth=labelled["label"], student_logits=outputs.logits)
        batch_size = labelled["label"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=batch_size)
        return losses["loss"]
