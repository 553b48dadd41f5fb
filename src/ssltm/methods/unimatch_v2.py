"""UniMatch V2 (Yang et al., "UniMatch V2: Pushing the Limit of Semi-Supervised Semantic
Segmentation", TPAMI 2025) on clips.

Mean Teacher's EMA teacher labels the weak view. The student learns two strong views of the same
clips, each with its own photometric draw and CutMix box, under Complementary Dropout: the features
of the first view are multiplied by a random binary channel mask times 2, those of the second by
its complement times 2, so that the two views together use every channel once; a random half of
the clips keep all their channels in both views. The unsupervised loss is the mean of the two
views' losses. `fp_at` chooses the features: `head` (the classifier head's input: for SSLTM the
fused query features, one map per clip) or `encoder` (every level of the backbone's output, as
UniMatch V2 drops its DINOv2 features; masks per frame).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import torch

from ssltm.methods.mean_teacher import MeanTeacherMethod
from ssltm.methods.weak_to_strong import features_perturbed
from ssltm.utils.options import require


def complementary_mask(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """N C channel mask of the first view: 0 or 2 per channel (Bernoulli 0.5), all 1 for a random
    half of the N samples. The second view's mask is 2 minus it."""
    mask = torch.bernoulli(torch.full(shape, 0.5, device=device)) * 2.0
    mask[torch.randperm(shape[0], device=device)[: shape[0] // 2]] = 1.0
    return mask


class UniMatchV2Method(MeanTeacherMethod):
    """Args (beyond `MeanTeacherMethod`'s):
    fp_at: `head` or `encoder`, the features Complementary Dropout masks.
    """

    def __init__(self, *args, fp_at: str = "head", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        require("method.fp_at", fp_at)
        self.fp_at = fp_at
        self._masks: list[torch.Tensor] = []  # drawn in the first view, complemented in the second

    def _masked(self, x: torch.Tensor, view: int, position: Iterator[int]) -> torch.Tensor:
        """x: N C ... features of strong view `view`; the i-th features the network reads in the
        second view get the complement of the i-th mask of the first."""
        i = next(position)
        if view == 0:
            self._masks.append(complementary_mask(tuple(x.shape[:2]), x.device))
            mask = self._masks[i]
        else:
            mask = 2.0 - self._masks[i]
        return x * mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - 2)))

    @contextlib.contextmanager
    def strong_stream(self, index: int) -> Iterator[None]:
        if index == 0:
            self._masks = []
        position = itertools.count()
        with features_perturbed(self.model, self.fp_at, lambda x: self._masked(x, index, position)):
            yield
        if index == 1 and next(position) != len(self._masks):
            raise RuntimeError("UniMatch V2: the second strong view read its features in other calls than the "
                               "first, so their channel masks cannot be complementary")

    def combined_unsupervised_loss(self, strong: torch.Tensor, unlabelled: dict, seen: dict
                                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The mean of the two strong views' losses (the first view's comes in as `strong`)."""
        frames, reference, mixed = self.strong_view(unlabelled["frames"], unlabelled["reference"],
                                                    {"targets": seen["unmixed_targets"]})
        with self.strong_stream(1):
            second = self.unsupervised_loss(self.model(frames, reference).logits, mixed["targets"])
        return (strong + second) / 2, {"strong1": strong, "strong2": second}
