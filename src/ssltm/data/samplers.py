"""Which samples make each batch: training batches that resume exactly, evaluation batches by video.

Training batches are a pure function of (seed, stream, global batch number): batch g draws its
`batch_size x world_size` sample indices (with replacement) and one augmentation seed per sample
from a generator seeded with (seed, stream, g). Hence
- resuming at batch g serves exactly the batches an uninterrupted run would have served, however
  many worker processes prefetched ahead before the interruption;
- a sample's random crop, flip and reference distance depend on its seed only, not on which
  worker or process draws it (`ClipDataset` seeds its draws with it);
- with several processes, rank r takes its slice r of the global batch, so a 2-process run with
  batch B sees the same samples as a 1-process run with batch 2B.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ssltm.data.dataset import ClipItem, SampleKey


@dataclass
class DataPosition:
    """How many training batches the run has consumed (shared by the data module and its
    samplers; stored in checkpoints through the data module's state_dict)."""

    batches: int = 0


def evaluates_video(video_index: int) -> bool:
    """Whether this process scores video `video_index` in a multi-process evaluation (video i
    goes to rank i mod world size)."""
    rank, world_size = world()
    return video_index % world_size == rank


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TrainBatchSampler(Sampler[list[SampleKey]]):
    """Fixed-length epochs of `steps_per_epoch` batches drawn with replacement, resumable.

    Args:
        num_items: size of the dataset.
        batch_size: samples per batch on this process.
        steps_per_epoch: batches in one epoch.
        position: the run's consumed-batch counter; iteration starts at its value and ends at the
            end of the epoch that contains it.
        seed: base seed of the run.
        stream: distinguishes the loaders of one run (labelled, unlabelled, pseudo).
    """

    def __init__(
        self, num_items: int, batch_size: int, steps_per_epoch: int, position: DataPosition,
        seed: int = 0, stream: int = 0,
    ) -> None:
        if num_items < 1:
            raise ValueError("TrainBatchSampler: the dataset is empty")
        self.num_items = num_items
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.position = position
        self.seed = seed
        self.stream = stream

    def __len__(self) -> int:
        return self.steps_per_epoch

    def batch(self, g: int) -> list[SampleKey]:
        """This process's share of global batch g."""
        rank, size = world()
        mixed = np.random.SeedSequence([self.seed, self.stream, g]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(mixed) >> 1)
        indices = torch.randint(self.num_items, (self.batch_size * size,), generator=generator)
        seeds = torch.randint(2**62, (self.batch_size * size,), generator=generator)
        mine = slice(rank * self.batch_size, (rank + 1) * self.batch_size)
        return [SampleKey(int(i), int(s)) for i, s in zip(indices[mine], seeds[mine], strict=True)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        start = self.position.batches
        end = (start // self.steps_per_epoch + 1) * self.steps_per_epoch
        for g in range(start, end):
            yield self.batch(g)


class VideoBatchSampler(Sampler[list[int]]):
    """Evaluation batches in dataset order, cut at every change of video. With several processes,
    each takes whole videos (video i goes to rank i mod world size), so that every video is
    walked in order by one process; the metrics are then summed across processes. A process left
    without videos (fewer videos than processes) still gets one batch, of another process's video,
    so that it joins the evaluation's collective calls; it does not score it (`evaluates_video`)."""

    def __init__(self, items: list[ClipItem], batch_size: int, rank: int | None = None, world_size: int | None = None) -> None:
        if rank is None or world_size is None:
            rank, world_size = world()
        self.batches: list[list[int]] = []
        for i, item in enumerate(items):
            if item.video % world_size != rank:
                continue
            last = self.batches[-1] if self.batches else None
            if last and len(last) < batch_size and items[last[-1]].video == item.video:
                last.append(i)
            else:
                self.batches.append([i])
        if not self.batches and items:
            self.batches = [[0]]  # a padding batch: scored by the process that owns its video

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
