"""The sample contract of the suite, shared by every data set.

A labelled sample is a dict:
    frames     T 3 H W  float   T adjacent frames ending at the query (normalised)
    reference  3 H W    float   one frame at distance d before the query (clamped into the video)
    label      H W      long    ground truth of the query frame, IGNORE_INDEX = 255
    meta       dict             video (str), video_index (int, its place in the split), query (int),
                                frame_indices (T,), reference_index (int), and `subset` (int) when
                                asked for: the frame's noisy/clean code (`reference_subset` below)
An unlabelled sample is the same without `label`; it may carry `hidden_label` (the ground truth the
method must not train on, all IGNORE_INDEX where none exists) for measuring pseudo-label quality.
Batched by the default collate function, tensors gain a leading B.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ssltm.constants import IGNORE_INDEX
from ssltm.data.clips import ClipSampler
from ssltm.data.transforms import ClipTransform, to_tensor_images
from ssltm.data.video import Video


def reference_subset(query_label: torch.Tensor, reference_label: torch.Tensor | None, ignore_index: int = IGNORE_INDEX) -> int:
    """1 ("noisy") when the reference frame's ground truth holds a class absent from the query
    frame's, 0 ("clean") otherwise, -1 when the reference has no ground truth. Noisy frames are
    those where context taken from the reference can mislead the query (the paper's Fig. 4b)."""
    if reference_label is None:
        return -1
    query = set(query_label.unique().tolist()) - {ignore_index}
    reference = set(reference_label.unique().tolist()) - {ignore_index}
    return int(bool(reference - query))


@dataclass(frozen=True)
class SampleKey:
    """A training sample: which item, and the seed of its random draws (data/samplers.py)."""

    index: int
    seed: int


@dataclass(frozen=True)
class ClipItem:
    video: int  # index into the dataset's list of videos
    query: int  # frame index of the query frame


class ClipDataset(Dataset):
    """Clips around query frames of a list of videos.

    Args:
        videos: the videos.
        items: which (video, query) pairs make the samples, in order.
        sampler: frame indices of a clip and its reference.
        transform: applied to all frames and labels of a sample at once.
        train: random reference distance and random geometry when True.
        with_label: put the query's ground truth in `label` (labelled samples).
        with_hidden_label: put it in `hidden_label` instead (unlabelled samples, for diagnostics).
        with_subset: put the noisy/clean code of the query in `meta["subset"]` (labelled samples;
            it reads the reference frame's ground truth too).
    """

    def __init__(
        self,
        videos: list[Video],
        items: list[ClipItem],
        sampler: ClipSampler,
        transform: ClipTransform,
        train: bool,
        with_label: bool,
        with_hidden_label: bool = False,
        with_subset: bool = False,
    ) -> None:
        self.videos = videos
        self.items = items
        self.sampler = sampler
        self.transform = transform
        self.train = train
        self.with_label = with_label
        self.with_hidden_label = with_hidden_label and not with_label
        self.with_subset = with_subset and with_label

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | SampleKey) -> dict:
        """A sample by index; a `SampleKey` also fixes the seed of its random draws (crop, flip,
        reference distance), without touching the caller's random state."""
        if isinstance(key, int):
            return self._sample(key)
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: `torch.manual_seed` would also queue a seed for every
            # accelerator backend, recording a stack trace each time (about 1.4 ms per sample)
            torch.default_generator.manual_seed(key.seed)
            return self._sample(key.index)

    def _sample(self, index: int) -> dict:
        item = self.items[index]
        video = self.videos[item.video]
        indices = self.sampler.clip_indices(item.query, video.num_frames)
        ref = self.sampler.reference_index(item.query, video.num_frames, self.train)
        images = to_tensor_images([video.frame(t) for t in [*indices, ref]])  # T+1 3 H W
        labels = None
        if self.with_label or self.with_hidden_label:
            labels = self._query_label(video, item.query, images.shape[-2:])[None]  # 1 H W
        images, labels = self.transform(images, labels, self.train)
        sample = {
            "frames": images[:-1],
            "reference": images[-1],
            "meta": {
                "video": video.video_id,
                "video_index": item.video,
                "query": item.query,
                "frame_indices": torch.tensor(indices),
                "reference_index": ref,
            },
        }
        if labels is not None:
            sample["label" if self.with_label else "hidden_label"] = labels[0]
        if self.with_subset:  # the query's label as scored, against the reference frame's
            has_reference = ref in video.annotated and ref != item.query
            reference = torch.from_numpy(video.label(ref)) if has_reference else None
            sample["meta"]["subset"] = reference_subset(labels[0], reference)
        return sample

    def _query_label(self, video: Video, t: int, size: torch.Size) -> torch.Tensor:
        if t in video.annotated:
            return torch.from_numpy(video.label(t)).long()
        return torch.full(tuple(size), IGNORE_INDEX, dtype=torch.long)
