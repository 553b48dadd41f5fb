"""The sample contract, clip sampling, label selection and the data module's loaders."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from ssltm.constants import IGNORE_INDEX
from ssltm.data.clips import ClipSampler, select_labelled
from ssltm.data.dataset import SampleKey
from ssltm.data.transforms import ClipTransform, clip_cutmix, cutmix_masks, to_tensor_images


def test_clip_indices_end_at_the_query_with_step_and_clamp_at_the_start():
    sampler = ClipSampler(num_frames=4, step=2)
    assert sampler.clip_indices(10, 20) == [4, 6, 8, 10]
    assert sampler.clip_indices(3, 20) == [0, 0, 1, 3]


def test_reference_distance_is_fixed_in_eval_random_in_range_in_training_and_clamped():
    sampler = ClipSampler(min_distance=2, max_distance=5, eval_distance=7)
    assert sampler.reference_index(20, 30, train=False) == 13
    assert sampler.reference_index(3, 30, train=False) == 0
    torch.manual_seed(0)
    drawn = {20 - sampler.reference_index(20, 30, train=True) for _ in range(200)}
    assert drawn == {2, 3, 4, 5}


def test_bad_clip_settings_are_clear_errors():
    with pytest.raises(ValueError, match="num_frames"):
        ClipSampler(num_frames=0)
    with pytest.raises(ValueError, match="min_distance"):
        ClipSampler(min_distance=5, max_distance=2)


def test_label_selection_modes():
    frames = list(range(0, 30))
    one = select_labelled(frames, "one_per_video", seed=0, video_index=1)
    assert len(one) == 1 and one == select_labelled(frames, "one_per_video", seed=0, video_index=1)
    assert select_labelled(frames, "all") == frames
    every = select_labelled(frames, "every_k", every_k=10, seed=0)
    assert len(every) == 3 and every[1] - every[0] == 10
    with pytest.raises(ValueError, match="data.labels"):
        select_labelled(frames, "some")


def test_one_labelled_query_is_drawn_uniformly_over_the_video():
    picks = [select_labelled(list(range(30)), "one_per_video", seed=0, video_index=v)[0] for v in range(600)]
    assert min(picks) == 0 and max(picks) == 29


def test_resize_applies_to_frames_and_labels_in_training_and_evaluation():
    transform = ClipTransform(resize=(16, 20), crop_size=(12, 12), mean=(0, 0, 0), std=(1, 1, 1))
    images = torch.rand(4, 3, 32, 40)
    labels = torch.randint(0, 3, (1, 32, 40))
    labels[0, :8] = IGNORE_INDEX
    out, lab = transform(images, labels, train=False)
    assert out.shape == (4, 3, 16, 20) and lab.shape == (1, 16, 20)
    assert set(lab.unique().tolist()) <= {0, 1, 2, IGNORE_INDEX} and (lab[0, :4] == IGNORE_INDEX).all()  # nearest
    assert torch.allclose(out.mean(), images.mean(), atol=0.02)  # an average, not a crop
    out, lab = transform(images, labels, train=True)
    assert out.shape == (4, 3, 12, 12) and lab.shape == (1, 12, 12)  # resized, then cropped


def _fake_camvid(root, size=(36, 48)):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, names in (("train", ["0001TP_006690.png", "0001TP_006720.png"]), ("val", ["0016E5_07959.png"])):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for name in names:
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / split / name)
            Image.fromarray(rng.integers(0, 12, size, dtype=np.uint8)).save(root / f"{split}annot" / name)


def test_resized_camvid_copy_gives_the_frames_that_resizing_on_the_fly_gives(tmp_path):
    """scripts/resize_camvid.py and `data.*_transform.resize` share one resampling rule: the copy's
    frames equal the on-the-fly resize up to 8-bit rounding, its labels exactly (void kept)."""
    import resize_camvid

    from ssltm.data.camvid import CamVidSource

    _fake_camvid(tmp_path / "full")
    assert resize_camvid.main([str(tmp_path / "full"), str(tmp_path / "small"), "--size", "18", "24"]) == 0
    transform = ClipTransform(resize=(18, 24), mean=(0, 0, 0), std=(1, 1, 1))
    for split in ("train", "val"):
        full, small = CamVidSource(str(tmp_path / "full")).videos(split), CamVidSource(str(tmp_path / "small")).videos(split)
        for big_video, small_video in zip(full, small, strict=True):
            for t in big_video.annotated:
                label = torch.from_numpy(big_video.label(t)).long()[None]
                images, labels = transform(to_tensor_images([big_video.frame(t)]), label, train=False)
                copy = to_tensor_images([small_video.frame(t)])
                assert copy.shape == images.shape == (1, 3, 18, 24)
                assert (copy - images).abs().max() <= 0.5 / 255 + 1e-6
                assert torch.equal(torch.from_numpy(small_video.label(t)).long(), labels[0])
                assert (labels == IGNORE_INDEX).any()  # void (11) survived as ignore


def test_resize_camvid_names_what_is_wrong(tmp_path, capsys):
    import resize_camvid

    (tmp_path / "empty").mkdir()
    assert resize_camvid.main([str(tmp_path / "empty"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no train/ and trainannot/ folders" in err and len(err.splitlines()) == 1
    assert resize_camvid.main([str(tmp_path / "empty"), str(tmp_path / "empty")]) == 2


def test_geometric_transform_is_identical_for_every_frame_and_label():
    transform = ClipTransform(crop_size=(20, 24), scale_range=(0.8, 1.5), hflip=True, mean=(0, 0, 0), std=(1, 1, 1))
    # a known pattern: pixel value = its column index; label = its row index
    h, w = 32, 40
    base = torch.arange(w, dtype=torch.float32).expand(h, w) / w
    images = base.expand(5, 3, h, w).clone()
    labels = torch.arange(h).view(h, 1).expand(2, h, w).clone()
    torch.manual_seed(1)
    for _ in range(20):
        out, lab = transform(images, labels, train=True)
        assert out.shape == (5, 3, 20, 24) and lab.shape == (2, 20, 24)
        assert all(torch.equal(out[0], out[i]) for i in range(5))
        assert torch.equal(lab[0], lab[1])
        assert (lab[:, :, 0:1] == lab[:, :, :]).all()  # rows stay rows


def test_samples_follow_the_contract(train_cfg_factory):
    cfg = train_cfg_factory()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batch, *_ = next(iter(loader))
    labelled, unlabelled = batch["labelled"], batch["unlabelled"]
    b, T = cfg.data.batch_size, cfg.data.clip.num_frames
    h, w = cfg.data.source.height, cfg.data.source.width
    assert labelled["frames"].shape == (b, T, 3, h, w) and labelled["frames"].dtype == torch.float32
    assert labelled["reference"].shape == (b, 3, h, w)
    assert labelled["label"].shape == (b, h, w) and labelled["label"].dtype == torch.long
    assert set(labelled["meta"]) == {"video", "video_index", "query", "frame_indices", "reference_index"}
    assert labelled["meta"]["frame_indices"].shape == (b, T)
    assert (labelled["meta"]["frame_indices"][:, -1] == labelled["meta"]["query"]).all()
    assert "label" not in unlabelled and unlabelled["hidden_label"].shape == (b, h, w)
    assert unlabelled["frames"].shape == (b, T, 3, h, w)


def test_a_keyed_sample_depends_on_its_key_alone_and_leaves_the_callers_random_state(train_cfg_factory):
    dm = instantiate(train_cfg_factory().data)
    dm.setup("fit")
    dataset = dm.labelled_set
    torch.manual_seed(1)
    first = dataset[SampleKey(0, 7)]
    after = torch.rand(3)
    torch.manual_seed(2)  # another caller state: the same sample
    again = dataset[SampleKey(0, 7)]
    other = dataset[SampleKey(0, 8)]  # another seed: other draws (crop, flip, reference)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after)  # drawing the sample did not consume the caller's draws
    assert torch.equal(first["frames"], again["frames"]) and torch.equal(first["label"], again["label"])
    assert first["meta"]["reference_index"] == again["meta"]["reference_index"]
    assert not torch.equal(first["frames"], other["frames"]) or (
        first["meta"]["reference_index"] != other["meta"]["reference_index"])


def test_labelled_and_unlabelled_frames_split_each_training_video(train_cfg_factory):
    dm = instantiate(train_cfg_factory().data)
    dm.setup("fit")
    labelled = {(i.video, i.query) for i in dm.labelled_set.items}
    unlabelled = {(i.video, i.query) for i in dm.unlabelled_set.items}
    videos = dm.labelled_set.videos
    assert len(labelled) == len(videos)  # one per video
    assert not labelled & unlabelled
    assert len(labelled) + len(unlabelled) == sum(v.num_frames for v in videos)


def test_all_labels_mode_leaves_nothing_unlabelled_and_supervised_runs_without_it(train_cfg_factory):
    dm = instantiate(train_cfg_factory("data.labels=all").data)
    dm.setup("fit")
    assert len(dm.unlabelled_set) == 0
    dm.use_unlabelled = False
    assert set(next(iter(dm.train_dataloader()))[0]) == {"labelled"}
    dm.use_unlabelled = True
    with pytest.raises(ValueError, match="no unlabelled training frames"):
        dm.train_dataloader()


def test_evaluation_walks_every_frame_of_every_video_in_order(train_cfg_factory):
    cfg = train_cfg_factory()
    dm = instantiate(cfg.data)
    dm.setup("validate")
    seen = []
    for batch in dm.val_dataloader():
        seen += list(zip(batch["meta"]["video"], batch["meta"]["query"].tolist()))
        assert (batch["label"] != IGNORE_INDEX).all()  # synthetic frames are fully labelled
    n = cfg.data.source.num_frames
    expected = [(f"val_{v:04d}", t) for v in range(cfg.data.source.val_videos) for t in range(n)]
    assert seen == expected


def test_cutmix_boxes_follow_their_area_and_probability():
    generator = torch.Generator().manual_seed(0)
    masks = cutmix_masks(400, (60, 80), p=0.5, area=(0.02, 0.4), generator=generator)
    boxed = masks.flatten(1).any(1)
    assert 0.4 < boxed.float().mean() < 0.6  # about half the samples get a box
    shares = masks[boxed].flatten(1).float().mean(1)
    assert shares.min() > 0.01 and shares.max() < 0.45  # the area range, up to rounding and clipping
    for mask in masks[boxed][:20]:  # each one a single axis-aligned rectangle
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        assert int(mask.sum()) == len(rows) * len(cols)


def test_clip_cutmix_mixes_every_frame_labels_and_confidences_by_the_same_box():
    B, N, H, W = 3, 4, 6, 8  # N: 3 clip frames + the reference
    clips = torch.arange(B, dtype=torch.float)[:, None, None, None, None].expand(B, N, 3, H, W).clone()
    clips += torch.arange(N, dtype=torch.float)[None, :, None, None, None] * 10  # frame n of clip b: b + 10 n
    labels = torch.arange(B)[:, None, None].expand(B, H, W).clone()
    confidence = labels.float() / 10
    masks = torch.zeros(B, H, W, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True  # clip 0 takes a box from clip 2 (the batch rolled by one)
    masks[2, :, :4] = True  # clip 2 takes the left half of clip 1
    mixed, mixed_labels, mixed_confidence = clip_cutmix(clips, masks, labels, confidence)
    partner = torch.tensor([2, 0, 1])
    for b in range(B):
        for n in range(N):
            expected = torch.where(masks[b], partner[b] + 10.0 * n, b + 10.0 * n)
            assert torch.equal(mixed[b, n, 0], expected), (b, n)  # every frame and the reference
        assert torch.equal(mixed_labels[b], torch.where(masks[b], partner[b], b))
        assert torch.equal(mixed_confidence[b], torch.where(masks[b], partner[b] / 10, b / 10))
    assert torch.equal(mixed[1], clips[1])  # no box: unchanged
