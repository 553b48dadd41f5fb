"""A LightningDataModule that serves labelled and unlabelled clips of any `VideoSource`.

Training yields `{"labelled": batch, "unlabelled": batch}` through Lightning's CombinedLoader (the
unlabelled part only when the method uses it; a `"pseudo"` part when pseudo-labels are given).
An epoch is a fixed number of steps (`steps_per_epoch`), each loader drawing with replacement:
with one labelled frame per video the labelled set is tiny, and semi-supervised training is
naturally counted in iterations. Training batches are a function of the run's seed and the batch
number (`samplers.TrainBatchSampler`); the number of batches consumed is part of the data
module's state in checkpoints, so a resumed run continues with the very batches it would have
seen. With several processes each serves its slice of the global batch, and evaluation gives each
process whole videos.
Validation and test walk over whole videos in temporal order (every annotated frame is a query),
which the video-consistency metric needs; an evaluation batch never mixes two videos, whose frames
may differ in size.
Before serving anything, `setup` checks each split it reads (`validate`, see data/validate.py).
"""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader

from ssltm.constants import IGNORE_INDEX
from ssltm.data.clips import ClipSampler, select_labelled
from ssltm.data.dataset import ClipDataset, ClipItem
from ssltm.data.info import DatasetInfo
from ssltm.data.pseudo_labels import PseudoLabelledVideo
from ssltm.data.samplers import DataPosition, TrainBatchSampler, VideoBatchSampler
from ssltm.data.transforms import ClipTransform
from ssltm.data.validate import check_videos
from ssltm.data.video import Video, VideoSource
from ssltm.errors import ConfigError, DataError
from ssltm.utils.options import require


class VideoDataModule(pl.LightningDataModule):
    """Labelled / unlabelled training clips and ordered evaluation clips of a video data set.

    Args:
        source: the data set (synthetic, CamVid, VSPW, Cityscapes).
        clip: clip and reference-frame sampling.
        train_transform, eval_transform: applied to whole clips.
        labels: which annotated training frames are exposed as labelled: `one_per_video`, `all`,
            or `every_k`. The others are served as unlabelled clips.
        every_k: k for `labels=every_k`.
        label_seed: seed of the choice of labelled frames.
        batch_size: labelled clips per step.
        unlabelled_batch_size: unlabelled clips per step (defaults to batch_size).
        eval_batch_size: clips per evaluation step.
        steps_per_epoch: training steps in one epoch.
        num_workers: loader worker processes per loader.
        use_unlabelled: serve the unlabelled loader (set from the method by the entry point).
        hidden_labels: attach the hidden ground truth to unlabelled clips (diagnostics only).
        split: the split that `val_dataloader`/`test_dataloader` read.
        pseudo_label_dir: pseudo-labels of the unlabelled frames (iterative self-training); when
            set, training also yields `"pseudo"` clips labelled by them.
        root: the data set's folder: the config keeps it beside the source, which reads it
            (`source.root: ${data.root}`); accepted here and not used.
        validate: checks run on each split before it is used: `full`, `layout` or `off`
            (data/validate.py).
        reference_subsets: also score evaluation frames by subset, "noisy" (the reference frame
            holds a class absent from the query frame) and "clean" (the rest): supp. Fig. 4b.
        seed: seed of the training batches (the entry point passes the run's `seed`).
    """

    def __init__(
        self,
        source: VideoSource,
        clip: ClipSampler,
        train_transform: ClipTransform,
        eval_transform: ClipTransform,
        labels: str = "one_per_video",
        every_k: int = 10,
        label_seed: int = 0,
        batch_size: int = 8,
        unlabelled_batch_size: int | None = None,
        eval_batch_size: int = 8,
        steps_per_epoch: int = 100,
        num_workers: int = 2,
        use_unlabelled: bool = True,
        hidden_labels: bool = True,
        split: str = "val",
        pseudo_label_dir: str | None = None,
        root: str | None = None,
        validate: str = "full",
        reference_subsets: bool = False,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.clip = clip
        self.train_transform = train_transform
        self.eval_transform = eval_transform
        require("data.labels", labels)  # before any data is read: a misspelling costs one line
        require("data.validate", validate)
        self.labels = labels
        self.every_k = every_k
        self.label_seed = label_seed
        self.batch_size = batch_size
        self.unlabelled_batch_size = unlabelled_batch_size or batch_size
        self.eval_batch_size = eval_batch_size
        self.steps_per_epoch = steps_per_epoch
        self.num_workers = num_workers
        self.use_unlabelled = use_unlabelled
        self.hidden_labels = hidden_labels
        self.split = split
        self.pseudo_label_dir = pseudo_label_dir
        self.validate = validate
        self.reference_subsets = reference_subsets
        self.seed = seed if seed is not None else int(torch.randint(2**31, ()))
        #: training batches consumed so far (saved in checkpoints; the samplers start from it)
        self.position = DataPosition()
        self.labelled_set: ClipDataset | None = None
        self.unlabelled_set: ClipDataset | None = None
        self.pseudo_set: ClipDataset | None = None
        self.eval_set: ClipDataset | None = None

    @property
    def info(self) -> DatasetInfo:
        return self.source.info

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.labelled_set is None:
            self._setup_train(self._checked_videos("train"))
        if self.eval_set is None:
            videos = self._checked_videos(self.split)
            items = [ClipItem(v, t) for v, video in enumerate(videos) for t in video.annotated]
            if not items:
                raise DataError(f"{self.info.name}: split {self.split!r} has no annotated frames to evaluate")
            self.eval_set = ClipDataset(
                videos, items, self.clip, self.eval_transform, train=False, with_label=True,
                with_subset=self.reference_subsets,
            )

    def _checked_videos(self, split: str) -> list[Video]:
        videos = self.source.videos(split)
        check_videos(videos, self.info, split, self.clip, self.validate, progress=self.validate == "full")
        return videos

    def _setup_train(self, videos: list[Video]) -> None:
        self._warn_if_crop_exceeds_frames(videos)
        labelled, unlabelled = [], []
        for v, video in enumerate(videos):
            chosen = set(
                select_labelled(video.annotated, self.labels, self.every_k, self.label_seed, v)
            )
            labelled += [ClipItem(v, t) for t in sorted(chosen)]
            unlabelled += [ClipItem(v, t) for t in range(video.num_frames) if t not in chosen]
        if not labelled:
            raise DataError(f"{self.info.name}: the training split has no labelled frames")
        if self.validate == "full":
            self._check_labelled_pixels(videos, labelled)
        common = dict(videos=videos, sampler=self.clip, transform=self.train_transform, train=True)
        self.labelled_set = ClipDataset(items=labelled, with_label=True, **common)
        self.unlabelled_set = ClipDataset(
            items=unlabelled, with_label=False, with_hidden_label=self.hidden_labels, **common
        )
        if self.pseudo_label_dir is not None:
            pseudo_videos = [PseudoLabelledVideo(video, self.pseudo_label_dir) for video in videos]
            items = [i for i in unlabelled if i.query in pseudo_videos[i.video].annotated]
            if not items:
                raise ConfigError(f"data.pseudo_label_dir: no pseudo-label PNGs under {self.pseudo_label_dir}")
            self.pseudo_set = ClipDataset(
                pseudo_videos, items, self.clip, self.train_transform, train=True, with_label=True
            )

    def _check_labelled_pixels(self, videos: list[Video], labelled: list[ClipItem]) -> None:
        """Labelled frames whose every pixel is void would train on nothing: a DataError naming
        the mask folder (checked with `validate=full`, which decodes the masks anyway)."""
        if any(bool((videos[i.video].label(i.query) != IGNORE_INDEX).any()) for i in labelled):
            return
        first = videos[labelled[0].video]
        where = getattr(first, "masks", {}).get(labelled[0].query, first.video_id)
        raise DataError(f"{self.info.name}: every pixel of the {len(labelled)} labelled training frame(s) is void "
                        f"(ignored), so there is nothing to learn; e.g. {where}")

    def _warn_if_crop_exceeds_frames(self, videos: list[Video]) -> None:
        """A training crop larger than the (resized) frames trains on padding: say so, once."""
        crop, resize = self.train_transform.crop_size, self.train_transform.resize
        if crop is None or not videos:
            return
        frame = resize or videos[0].frame(0).shape[:2]
        if crop[0] > frame[0] or crop[1] > frame[1]:
            warnings.warn(
                f"data.train_transform.crop_size={list(crop)} is larger than the frames "
                f"({frame[0]}x{frame[1]}, {videos[0].video_id}): training pads them with "
                "zeros and ignored labels; use a crop of at most the frame size",
                stacklevel=2,
            )

    def _loader(self, dataset: ClipDataset, batch_size: int, stream: int | None = None,
                all_videos: bool = False) -> DataLoader:
        """Training batches of stream `stream` (fixed-length epochs, with replacement), or
        evaluation batches video by video when `stream` is None (this process's share of the
        videos, or all of them with `all_videos`)."""
        if stream is None:
            batches = VideoBatchSampler(dataset.items, batch_size, *((0, 1) if all_videos else ()))
        else:
            batches = TrainBatchSampler(len(dataset), batch_size, self.steps_per_epoch, self.position,
                                        self.seed, stream)
        # A loader's own generator: creating its iterator (each validation) draws its worker seed
        # from it, not from the global RNG that training's augmentations use, so how often a run
        # validates does not change what it learns.
        generator = torch.Generator().manual_seed(self.seed * 4 + (3 if stream is None else stream))
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=generator)

    # --- the position in the training stream -------------------------------------------------
    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        if self.trainer is not None and self.trainer.training:
            self.position.batches += 1
        return batch

    def state_dict(self) -> dict:
        return {"train_batches": self.position.batches}

    def load_state_dict(self, state_dict: dict) -> None:
        self.position.batches = int(state_dict.get("train_batches", 0))

    def train_dataloader(self) -> CombinedLoader:
        loaders = {"labelled": self._loader(self.labelled_set, self.batch_size, stream=0)}
        if self.pseudo_set is not None:
            loaders["pseudo"] = self._loader(self.pseudo_set, self.unlabelled_batch_size, stream=2)
        if self.use_unlabelled:
            if not len(self.unlabelled_set):
                raise ConfigError(
                    f"{self.info.name}: no unlabelled training frames (data.labels={self.labels}); "
                    "a semi-supervised method needs some"
                )
            loaders["unlabelled"] = self._loader(self.unlabelled_set, self.unlabelled_batch_size, stream=1)
        return CombinedLoader(loaders, mode="min_size")

    def unlabelled_eval_dataloader(self) -> DataLoader:
        """Every unlabelled training frame, video by video, with the evaluation transform and no
        label: what a teacher pseudo-labels (iterative self-training). All videos in any process."""
        if self.unlabelled_set is None:
            self.setup("fit")
        frames = self.unlabelled_set
        dataset = ClipDataset(frames.videos, frames.items, self.clip, self.eval_transform, train=False,
                              with_label=False)
        return self._loader(dataset, self.eval_batch_size, all_videos=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.eval_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
