"""The synthetic video set: deterministic, and its temporal classes need time to be told apart."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ssltm.data.synthetic import (
    DRIFT_LEFT,
    DRIFT_RIGHT,
    SYNTHETIC_INFO,
    TAGGED_BLUE,
    TAGGED_RED,
    TEMPORAL_PAIRS,
    SyntheticConfig,
    SyntheticSource,
    render_frame,
    reverse_time,
    sample_video_spec,
    video_spec,
)

CFG = SyntheticConfig()


def specs(count: int, seed: int = 0):
    return [video_spec(seed, "train", i, CFG) for i in range(count)]


def test_same_seed_gives_the_same_videos_frame_for_frame():
    a = SyntheticSource(seed=3).videos("val")
    b = SyntheticSource(seed=3).videos("val")
    for va, vb in zip(a, b):
        for t in (0, 7, va.num_frames - 1):
            assert np.array_equal(va.frame(t), vb.frame(t))
            assert np.array_equal(va.label(t), vb.label(t))


def test_other_seed_or_split_gives_other_videos():
    base = SyntheticSource(seed=3).videos("val")[0].frame(0)
    assert not np.array_equal(base, SyntheticSource(seed=4).videos("val")[0].frame(0))
    assert not np.array_equal(base, SyntheticSource(seed=3).videos("test")[0].frame(0))


def test_frames_and_labels_have_the_contract_types_and_every_class_occurs():
    seen = set()
    for spec in specs(20):
        image, label = render_frame(spec, 5)
        assert image.shape == (CFG.height, CFG.width, 3) and image.dtype == np.uint8
        assert label.shape == (CFG.height, CFG.width) and label.dtype == np.uint8
        seen |= set(np.unique(label).tolist())
    assert seen == set(range(SYNTHETIC_INFO.num_classes))


def test_objects_move_and_the_background_moves():
    moving = [s for s in specs(20) if s.background_velocity != (0, 0)]
    assert moving, "some backgrounds must move"
    spec = dataclasses.replace(moving[0], objects=())
    assert not np.array_equal(render_frame(spec, 0)[0], render_frame(spec, 1)[0])
    drifting = [o for s in specs(20) for o in s.objects if o.cls in (DRIFT_LEFT, DRIFT_RIGHT)]
    assert all((o.vx < 0) == (o.cls == DRIFT_LEFT) and o.vx != 0 for o in drifting)


def test_drift_classes_are_indistinguishable_in_any_single_frame():
    """Time reversal with the two labels swapped reproduces every frame pixel for pixel: each
    frame showing a drift_left object is also a frame of a video where it is drift_right."""
    checked = 0
    for spec in specs(30):
        spec = dataclasses.replace(
            spec, objects=tuple(o for o in spec.objects if o.cls not in (TAGGED_RED, TAGGED_BLUE))
        )
        if not any(o.cls in (DRIFT_LEFT, DRIFT_RIGHT) for o in spec.objects):
            continue
        mirror = reverse_time(spec)
        last = spec.num_frames - 1
        for t in range(spec.num_frames):
            image, label = render_frame(spec, t)
            image_m, label_m = render_frame(mirror, last - t)
            assert np.array_equal(image, image_m)  # the very same picture ...
            drift = np.isin(label, [DRIFT_LEFT, DRIFT_RIGHT])
            assert drift.any()
            swapped = np.where(label == DRIFT_LEFT, DRIFT_RIGHT, DRIFT_LEFT)
            assert np.array_equal(label_m[drift], swapped[drift])  # ... with the other label
            assert np.array_equal(label_m[~drift], label[~drift])
        checked += 1
    assert checked >= 5


def test_time_reversed_videos_are_as_likely_as_the_originals():
    """The sampler's support is closed under time reversal (objects stay inside the frame and
    within the speed limit), so the mirror video of the test above is a real sample."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = reverse_time(sample_video_spec(rng, CFG))
        for o in spec.objects:
            for t in (0, spec.num_frames - 1):
                assert o.radius <= o.y0 + o.vy * t < CFG.height - o.radius
                assert o.radius <= o.x0 + o.vx * t < CFG.width - o.radius
            assert abs(o.vx) <= CFG.max_speed and abs(o.vy) <= 1
            if o.cls in (DRIFT_LEFT, DRIFT_RIGHT):
                assert (o.vx < 0) == (o.cls == DRIFT_LEFT)


def test_tagged_classes_differ_only_in_frames_near_the_start():
    for spec in specs(30):
        tagged = [o for o in spec.objects if o.cls in (TAGGED_RED, TAGGED_BLUE)]
        if not tagged:
            continue
        swap = {TAGGED_RED: TAGGED_BLUE, TAGGED_BLUE: TAGGED_RED}
        other = dataclasses.replace(
            spec, objects=tuple(dataclasses.replace(o, cls=swap.get(o.cls, o.cls)) for o in spec.objects)
        )
        for t in range(spec.num_frames):
            same = np.array_equal(render_frame(spec, t)[0], render_frame(other, t)[0])
            assert same == (t >= spec.cue_frames), t
        return
    pytest.fail("no video with a tagged object")


def test_temporal_pairs_share_shape():
    from ssltm.data.synthetic import SHAPE_OF_CLASS

    for a, b in TEMPORAL_PAIRS:
        assert SHAPE_OF_CLASS[a] == SHAPE_OF_CLASS[b]


def test_a_frame_size_too_small_for_the_motion_is_a_clear_error():
    with pytest.raises(ValueError, match="num_frames"):
        sample_video_spec(np.random.default_rng(0), SyntheticConfig(width=32, num_frames=30))


def test_mvc_sees_a_temporal_pair_flickering_on_the_bench_validation_videos(tmp_path):
    """mVC_8 of the ground truth scored as a prediction (100) against the ground truth with the
    temporal pairs swapped at random per frame (scripts/mvc_flicker.py): at least 5 points apart
    on the bench scale's validation videos, so that the metric can see temporal inconsistency."""
    from conftest import compose_config
    from hydra.utils import instantiate
    from mvc_flicker import flicker_scores

    cfg = compose_config("train", ["experiment=bench_sanity"], tmp_path)
    source = instantiate(cfg.data.source)
    exact, flicker = flicker_scores(source.videos("val"), len(SYNTHETIC_INFO.classes))
    assert exact["mVC8"] == 1.0 and exact["mIoU"] == 1.0
    assert 100 * (exact["mVC8"] - flicker["mVC8"]) >= 5.0, flicker["mVC8"]
    assert flicker["mIoU"] < 1.0  # the swaps are real


def test_transient_objects_keep_time_reversal_exact_and_make_noisy_frames():
    """`transient`: objects that appear or vanish mid-video. Time reversal (vanish <-> appear)
    still reproduces every frame pixel for pixel, and a reference frame 30 frames back now often
    holds a class that its query lacks ("noisy" for supp. Fig. 4b), which never happens without."""
    import torch

    from ssltm.data.dataset import reference_subset

    cfg = dataclasses.replace(CFG, transient=1.0)
    for i in range(10):
        spec = video_spec(0, "val", i, cfg)
        spec = dataclasses.replace(spec, objects=tuple(o for o in spec.objects if o.cls not in (TAGGED_RED, TAGGED_BLUE)))
        assert all(o.visible is not None for o in spec.objects)
        mirror, last = reverse_time(spec), spec.num_frames - 1
        for t in range(spec.num_frames):
            image, label = render_frame(spec, t)
            image_m, label_m = render_frame(mirror, last - t)
            assert np.array_equal(image, image_m)
            swap = {DRIFT_LEFT: DRIFT_RIGHT, DRIFT_RIGHT: DRIFT_LEFT}
            assert np.array_equal(label_m, np.vectorize(lambda c: swap.get(c, c))(label))

    def noisy_share(source: SyntheticSource) -> float:
        codes = []
        for video in source.videos("val"):
            first = torch.from_numpy(video.label(0))
            codes += [reference_subset(torch.from_numpy(video.label(t)), first) for t in range(20, video.num_frames)]
        return sum(codes) / len(codes)

    assert noisy_share(SyntheticSource(val_videos=8)) == 0.0
    assert all(o.visible is None for s in specs(10) for o in s.objects)  # the default set is unchanged
    assert noisy_share(SyntheticSource(val_videos=8, transient=0.5)) > 0.05
