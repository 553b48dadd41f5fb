"""Global Category Context (GCC): K prototypes per class, kept over the whole data set.

SSLTM (Lao et al., CVPR 2023; supplementary Sec. 2.1 and Fig. 1): K cluster centres per class
(K = 3 best), updated either by an MSE loss (best) or by an exponential moving average.
Our reading (DESIGN.md): a labelled pixel (ground truth or confident pseudo-label) is assigned to
the nearest of its class's K prototypes; each prototype's target is the mean of its assigned
features. `ema`: prototype <- m * prototype + (1 - m) * mean (a buffer). `mse`: prototypes are
parameters pulled towards the detached means by an MSE loss. Under both rules the prototypes move
ONLY by their update rule: reading the memory detaches them, so the segmentation loss trains the
attention that reads the memory, never the memory itself, and `mse` vs `ema` compares two update
rules of the same cluster centres (supp. Fig. 1), not learned against fixed prototypes.

A class's prototypes start at K distinct pixels of the class (distinct feature vectors where the
class has that many) the first time it is seen, picked by a generator seeded by (seed, class).
`forward` updates the memory before it reads it, so a step's forward pass and its backward pass
see the same prototypes. Sums and counts are all-reduced across processes when torch.distributed
is initialised, so every rank holds the same memory.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ssltm.constants import IGNORE_INDEX
from ssltm.models.context import ContextAttention
from ssltm.utils.options import require


class GlobalCategoryContext(nn.Module):
    """Args:
    num_classes: classes of the data set.
    channels: C of the features.
    k: prototypes per class.
    update: `mse` (parameters + loss) or `ema` (buffer + moving average).
    momentum: m of the EMA update.
    seed: seed of the choice of a new class's starting pixels (the run's seed).
    """

    def __init__(
        self, num_classes: int, channels: int, k: int = 3, update: str = "mse", momentum: float = 0.99,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        require("model.gcc.k", k)
        require("model.gcc.update", update)
        require("model.gcc.momentum", momentum)
        self.num_classes, self.k, self.update_rule, self.momentum = num_classes, k, update, momentum
        self.seed = seed or 0
        prototypes = torch.randn(num_classes, k, channels) * 0.02  # K M C
        if update == "mse":
            self.prototypes = nn.Parameter(prototypes)
        else:
            self.register_buffer("prototypes", prototypes)
        self.register_buffer("initialized", torch.zeros(num_classes, dtype=torch.bool))
        self.attention = ContextAttention(channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: B C H W pixel features; labels: B H W (IGNORE_INDEX where unknown) or None.

        With labels, the memory is updated first (`update`), then read, so the forward pass and
        the backward pass use the same prototypes. Returns the read context (B C H W) and the
        update's loss (0 for `ema` or without labels).
        """
        loss = self.update(x, labels) if labels is not None else x.new_zeros(())
        return self.read(x), loss

    def read(self, x: torch.Tensor) -> torch.Tensor:
        """x: B C H W -> B C H W, each pixel attending over all prototypes (detached: the memory
        moves only by its update rule)."""
        memory = self.prototypes.detach().clone()  # K M C; a copy, safe from later in-place updates
        return self.attention(x, memory.flatten(0, 1)[None].expand(x.shape[0], -1, -1))

    def assign(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Index (class * k + slot) of the nearest prototype of each pixel's own class.

        features: N C, classes: N -> N.
        """
        own = self.prototypes.detach()[classes]  # N M C
        slot = torch.cdist(features[:, None], own)[:, 0].argmin(-1)  # N
        return classes * self.k + slot

    def statistics(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums (K*M, C) and counts (K*M) of the labelled pixels assigned to each prototype.

        features: B C h w (detached); labels: B H W at any size (nearest-resized to h w).
        """
        labels = F.interpolate(labels[:, None].float(), size=features.shape[-2:], mode="nearest")[:, 0].long()
        pixels = features.permute(0, 2, 3, 1).flatten(0, 2)  # N C
        labels = labels.flatten()
        keep = (labels != IGNORE_INDEX) & (labels >= 0) & (labels < self.num_classes)
        pixels, labels = pixels[keep], labels[keep]
        self._initialise_new_classes(pixels, labels)
        index = self.assign(pixels, labels)
        sums = torch.zeros(self.num_classes * self.k, pixels.shape[1], device=pixels.device, dtype=pixels.dtype)
        sums.index_add_(0, index, pixels)
        counts = torch.bincount(index, minlength=self.num_classes * self.k).to(pixels.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        return sums, counts

    @torch.no_grad()
    def _initialise_new_classes(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        """Start each class seen for the first time at K of its pixels of the whole (global) batch:
        K distinct feature vectors where the class has that many (else all of them, then repeats),
        so that the K slots start apart and split the class's pixels between them. The picks come
        from a generator seeded by (seed, class) over the sorted distinct vectors: the same on every
        process, and the same as one process holding the whole batch."""
        present = torch.zeros(self.num_classes, dtype=torch.bool, device=pixels.device)
        present[labels.unique()] = True
        distributed = dist.is_available() and dist.is_initialized()
        if distributed:
            present = present.to(torch.int32)
            dist.all_reduce(present, op=dist.ReduceOp.MAX)
            present = present.bool()
        for cls in torch.nonzero(present & ~self.initialized).flatten().tolist():
            members = pixels[labels == cls]  # n C, this process's pixels of the class
            if distributed:
                members = _gather_rows(members)  # all processes' pixels, in rank order
            distinct = torch.unique(members, dim=0)  # d C, sorted: independent of pixel order
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + cls)
            order = torch.randperm(len(distinct), generator=generator)
            pick = order[torch.arange(self.k) % len(distinct)].to(members.device)  # repeats only if d < K
            self.prototypes.data[cls] = distinct[pick]
            self.initialized[cls] = True

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Update the memory from labelled pixels; returns the MSE loss (0 for `ema`).

        features: B C h w; labels: B H W (IGNORE_INDEX where unknown).
        """
        sums, counts = self.statistics(features.detach(), labels)
        seen = counts > 0
        means = sums[seen] / counts[seen, None]  # S C
        flat = self.prototypes.view(-1, self.prototypes.shape[-1])  # K*M C
        if self.update_rule == "ema":
            with torch.no_grad():
                flat[seen] = self.momentum * flat[seen] + (1.0 - self.momentum) * means
            return features.new_zeros(())
        if not bool(seen.any()):
            return (self.prototypes * 0.0).sum()  # keeps the graph connected
        return F.mse_loss(flat[seen], means)


def _gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's `rows` (n_r C, n_r may differ), in rank order."""
    counts = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([len(rows)], device=rows.device))
    longest = int(max(counts))
    padded = torch.zeros(longest, rows.shape[1], dtype=rows.dtype, device=rows.device)
    padded[: len(rows)] = rows
    gathered = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(n)] for g, n in zip(gathered, counts, strict=True)])
