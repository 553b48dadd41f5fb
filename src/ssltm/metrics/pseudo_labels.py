"""How good a semi-supervised method's pseudo-labels are, class by class, against the hidden
ground truth of the unlabelled frames (methods/weak_to_strong.py logs it once an epoch)."""

from __future__ import annotations

import torch

from ssltm.constants import IGNORE_INDEX


class PseudoLabelTally:
    """Per class of the hidden ground truth, summed over the steps since the last `reset`: its
    pixels, those that carry a pseudo-label, and those whose pseudo-label is right. Coverage of a
    class = labelled / pixels; accuracy = right / labelled. "objects" pools every class but one
    named `background` (the synthetic set's), which dominates the pooled figures otherwise."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.bins = torch.zeros(3, num_classes + 1, dtype=torch.long)  # pixels, labelled, right; + a bin for the rest

    @property
    def counts(self) -> torch.Tensor:
        """3 K: pixels, labelled, right per class."""
        return self.bins[:, : self.num_classes]

    def add(self, targets: torch.Tensor, hidden: torch.Tensor) -> None:
        """targets, hidden: B H W (IGNORE_INDEX where no pseudo-label / no ground truth). Counted
        on the batch's device by scatter-add (no boolean indexing: no device sync a step)."""
        self.bins = self.bins.to(hidden.device)
        known = hidden != IGNORE_INDEX
        labelled = known & (targets != IGNORE_INDEX)
        for row, mask in enumerate((known, labelled, labelled & (targets == hidden))):
            index = torch.where(mask, hidden, self.num_classes).flatten()
            self.bins[row].scatter_add_(0, index, torch.ones_like(index))

    def reset(self) -> None:
        self.bins.zero_()

    def rates(self, names: list[str], counts: torch.Tensor | None = None) -> dict[str, float]:
        """`train/pseudo_coverage/<class>` and `train/pseudo_accuracy/<class>` of every class seen
        (and of `objects`); `counts` (3 K) replaces the tally's own (e.g. summed over processes)."""
        counts = self.counts if counts is None else counts
        groups = {name: counts[:, i] for i, name in enumerate(names)}
        if "background" in names:
            groups["objects"] = counts.sum(1) - counts[:, names.index("background")]
        rates = {}
        for name, (pixels, labelled, right) in ((n, c.tolist()) for n, c in groups.items()):
            if pixels > 0:
                rates[f"train/pseudo_coverage/{name}"] = labelled / pixels
            if labelled > 0:
                rates[f"train/pseudo_accuracy/{name}"] = right / labelled
        return rates
