"""mIoU and mVC against values computed by hand on tiny arrays, and the golden VSPW case."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ssltm.data.dataset import reference_subset
from ssltm.metrics import MeanIoU, VideoConsistency
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics

IGN = 255


def t(rows):
    return torch.tensor(rows, dtype=torch.long)


def test_miou_matches_hand_computed_confusion_matrix():
    # truth / prediction over 8 pixels, one ignored pixel, class 2 never in the truth
    truth = t([[0, 0, 1, 1], [1, IGN, 0, 1]])
    pred = t([[0, 1, 1, 1], [2, 2, 0, 1]])
    metric = MeanIoU(num_classes=3)
    metric.update(pred[None], truth[None])
    # valid pixels (truth, pred): (0,0) (0,1) (1,1) (1,1) (1,2) (0,0) (1,1); the (255,2) is ignored
    # class 0: truth 3, pred 2, TP 2 -> 2/3; class 1: truth 4, pred 4, TP 3 -> 3/5
    # class 2: absent from truth -> NaN, not averaged (its false positive hurts class 1 only)
    iou = metric.per_class_iou()
    assert iou[0].item() == pytest.approx(2 / 3)
    assert iou[1].item() == pytest.approx(3 / 5)
    assert math.isnan(iou[2].item())
    assert metric.compute().item() == pytest.approx((2 / 3 + 3 / 5) / 2)


def test_miou_accumulates_one_confusion_matrix_not_a_mean_of_batches():
    metric = MeanIoU(num_classes=2)
    metric.update(t([[0, 0, 0, 1]])[None], t([[0, 0, 0, 0]])[None])  # batch IoU_0 = 3/4
    metric.update(t([[1, 1]])[None], t([[1, 1]])[None])  # batch IoU_1 = 1
    # whole set: class 0 TP 3, truth 4, pred 3 -> 3/4; class 1 TP 2, truth 2, pred 3 -> 2/3
    assert metric.compute().item() == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_miou_counts_invalid_predictions_as_misses_and_rejects_bad_targets():
    metric = MeanIoU(num_classes=2)
    metric.update(t([[0, 7]])[None], t([[0, 1]])[None])
    assert metric.per_class_iou().tolist() == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match=r"target values must be in \[0, 2\)"):
        metric.update(t([[0]])[None], t([[5]])[None])


def _feed(metric, preds, gts, video="v"):
    for i, (p, g) in enumerate(zip(preds, gts)):
        metric.update(t(p)[None], t(g)[None], [video], [i])


def test_vc_of_a_window_that_breaks_consistency_is_hand_computed():
    # n = 2, 4 frames of 1x4 pixels -> windows i = 0, 1 (C - n = 2); the window ending on the
    # last frame is not counted (VSPW's range)
    gts = [[[0, 0, 1, 1]], [[0, 0, 1, 2]], [[0, 0, 1, 2]], [[3, 3, 3, 3]]]
    preds = [[[0, 0, 1, 1]], [[0, 1, 1, 1]], [[0, 1, 1, 1]], [[0, 0, 0, 0]]]
    metric = VideoConsistency(n=2)
    _feed(metric, preds, gts)
    # i=0: G = gt0==gt1 -> [1,1,1,0] (|G|=3); P = p0==p1 -> [1,0,1,1]; G&P = [1,0,1,0] -> 2/3
    # i=1: G = [1,1,1,1]; P = [1,1,1,1] -> 1
    assert metric.compute().item() == pytest.approx((2 / 3 + 1) / 2)
    assert int(metric.windows) == 2


def test_vc_skips_a_video_not_longer_than_n_and_averages_over_all_windows():
    metric = VideoConsistency(n=3)
    same = [[[1, 1]]] * 3  # C = 3 <= n: no window
    _feed(metric, same, same, video="short")
    assert int(metric.windows) == 0 and math.isnan(metric.compute().item())
    # C = 5: windows 0, 1; gt constant; preds: frame 2 differs at pixel 1
    gts = [[[1, 1]]] * 5
    preds = [[[1, 1]], [[1, 1]], [[1, 0]], [[1, 1]], [[1, 1]]]
    _feed(metric, preds, gts, video="long")
    # window 0 (frames 0-2): P = [1,0] -> 1/2; window 1 (frames 1-3): P = [1,0] -> 1/2
    assert int(metric.windows) == 2
    assert metric.compute().item() == pytest.approx(0.5)


def test_vc_window_with_empty_g_is_left_out_of_the_mean():
    metric = VideoConsistency(n=2)
    # C = 4 -> windows 0, 1; window 0: G empty -> NaN; window 1: G full, P = [1, 0] -> 1/2
    gts = [[[0, 1]], [[1, 0]], [[1, 0]], [[5, 5]]]
    preds = [[[0, 0]], [[0, 0]], [[0, 1]], [[0, 0]]]
    _feed(metric, preds, gts)
    assert int(metric.windows) == 2 and int(metric.valid_windows) == 1
    assert metric.compute().item() == pytest.approx(0.5)


def test_vc_keeps_videos_apart_when_interleaved_and_rejects_out_of_order_frames():
    metric = VideoConsistency(n=2)
    for i in range(4):
        metric.update(t([[[1]], [[i % 2]]]), t([[[1]], [[1]]]), ["a", "b"], [i, i])
    # 4 frames, n = 2: windows 0 and 1 per video; a: 1.0 each; b: preds 0,1,0,1 -> 0.0 each
    assert int(metric.windows) == 4
    assert metric.compute().item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="temporal order"):
        metric.update(t([[[1]]]), t([[[1]]]), ["a"], [2])


def test_vc_reset_forgets_unfinished_videos():
    metric = VideoConsistency(n=2)
    _feed(metric, [[[1]]] * 2, [[[1]]] * 2)
    metric.reset()
    _feed(metric, [[[1]]] * 2, [[[1]]] * 2)  # frame 0 again: allowed after reset
    assert int(metric.windows) == 0


def test_golden_vspw_case_matches_expected_to_1e6(shared_dir, tmp_path):
    from score import main, score

    case = shared_dir / "golden" / "vspw_case"
    expected = json.loads((case / "expected.json").read_text())
    result = score(case, case / "pred", "val")
    for key in ("mIoU", "mVC8", "mVC16"):
        assert result[key] == pytest.approx(expected[key], abs=1e-6), key
    assert result["windows8"] == expected["windows8"]
    assert result["windows16"] == expected["windows16"]
    out = tmp_path / "metrics.json"
    assert main([f"gt_root={case}", f"pred_dir={case / 'pred'}", f"out={out}"]) == 0
    assert json.loads(out.read_text())["mIoU"] == pytest.approx(expected["mIoU"], abs=1e-6)


def test_score_names_a_missing_prediction(shared_dir, tmp_path, capsys):
    import shutil

    from score import main

    case = shared_dir / "golden" / "vspw_case"
    pred = tmp_path / "pred"
    shutil.copytree(case / "pred", pred)
    victim = sorted((pred / "video_7_1").glob("*.png"))[3]
    victim.unlink()
    assert main([f"gt_root={case}", f"pred_dir={pred}"]) == 1
    assert str(victim) in capsys.readouterr().err


def test_video_segmentation_metrics_report_every_key():
    metrics = VideoSegmentationMetrics(num_classes=2)
    for i in range(10):
        metrics.update(t([[[0, 1]]]), t([[[0, 1]]]), ["v"], [i])
    result = metrics.compute()
    assert result["mIoU"] == 1.0 and result["mVC8"] == 1.0 and result["windows8"] == 2
    assert result["windows16"] == 0 and math.isnan(result["mVC16"])
    assert result["per_class_iou"] == [1.0, 1.0]


def test_reference_subset_rule_noisy_when_the_reference_holds_a_class_the_query_lacks():
    query = t([[0, 1], [1, 255]])
    assert reference_subset(query, t([[1, 1], [0, 0]])) == 0  # same classes: clean
    assert reference_subset(query, t([[1, 1], [255, 255]])) == 0  # fewer classes: clean
    assert reference_subset(query, t([[2, 1], [0, 0]])) == 1  # class 2 absent from the query: noisy
    assert reference_subset(query, None) == -1  # no ground truth for the reference: unknown


def test_subset_miou_scores_noisy_and_clean_frames_apart():
    metrics = VideoSegmentationMetrics(num_classes=2)
    # frame 0 (clean) predicted right, frame 1 (noisy) predicted all wrong, frame 2 unknown
    target = t([[[0, 1]], [[0, 1]], [[0, 1]]])
    preds = t([[[0, 1]], [[1, 0]], [[0, 1]]])
    metrics.update(preds, target, ["v", "v", "v"], [0, 1, 2], subset=t([0, 1, -1]))
    result = metrics.compute()
    assert result["clean/mIoU"] == 1.0 and result["noisy/mIoU"] == 0.0
    assert result["clean_frames"] == 1 and result["noisy_frames"] == 1
    assert result["mIoU"] == pytest.approx(0.5)  # the whole set: IoU 2 / (2 + 1 + 1) per class
    metrics.reset()
    metrics.update(preds, target, ["w", "w", "w"], [0, 1, 2])
    assert "noisy/mIoU" not in metrics.compute()  # not asked for: not reported


def test_score_and_training_compute_the_same_mvc_where_raw_ignore_values_change(tmp_path):
    """scripts/score.py and the training-time metrics read the same labels (train ids, every raw
    ignore value 0 / 254 / 255 becoming 255): on a case whose ignore pixels switch between raw 0
    and 254, both give the same mVC_8 (before, score.py compared raw masks and training train ids)."""
    import numpy as np
    from PIL import Image
    from score import score

    from ssltm.data.vspw import VSPWSource

    root, frames = tmp_path / "vspw", 10
    (root / "data" / "v" / "origin").mkdir(parents=True)
    (root / "data" / "v" / "mask").mkdir()
    (root / "pred" / "v").mkdir(parents=True)
    (root / "val.txt").write_text("v\n")
    for i in range(frames):
        raw = np.full((4, 4), 3, np.uint8)  # class 2 everywhere ...
        raw[:2] = 0 if i % 2 else 254  # ... but the top half flips between two raw ignore values
        Image.fromarray(raw).save(root / "data" / "v" / "mask" / f"{i:05d}.png")
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "data" / "v" / "origin" / f"{i:05d}.jpg")
        pred = np.full((4, 4), 2, np.uint8)
        pred[0, 0] = i % 3  # one flickering pixel in the ignored half
        Image.fromarray(pred).save(root / "pred" / "v" / f"{i:05d}.png")
    scored = score(root, root / "pred", "val")

    (video,) = VSPWSource(str(root)).videos("val")
    training = VideoSegmentationMetrics(num_classes=124)
    for i in range(frames):
        pred = torch.from_numpy(np.array(Image.open(root / "pred" / "v" / f"{i:05d}.png")).astype(np.int64))
        training.update(pred[None], torch.from_numpy(video.label(i).astype(np.int64))[None], ["v"], [i])
    expected = training.compute()
    assert scored["mVC8"] == expected["mVC8"] and scored["windows8"] == expected["windows8"] == 2
    assert scored["mVC8"] == pytest.approx(15 / 16)  # G = every pixel; P misses the flickering one


def test_golden_case_with_a_class_absent_from_the_truth_averages_only_classes_in_the_truth(shared_dir, tmp_path):
    """The golden predictions never name a class absent from the ground truth, so matching them
    cannot tell "mean over classes in the ground truth" from "mean over classes in truth or
    prediction". Here a quarter of each predicted frame is set to such a class: the suite's mIoU
    must equal the mean over the ground truth's classes (numpy, from the files), not the other."""
    import shutil

    import numpy as np
    from PIL import Image
    from score import score

    from ssltm.data.vspw import remap_vspw_mask

    case = shared_dir / "golden" / "vspw_case"
    pred_dir = tmp_path / "pred"
    shutil.copytree(case / "pred", pred_dir)
    masks = sorted((case / "data").glob("*/mask/*.png"))
    truths = [remap_vspw_mask(np.array(Image.open(m)), m).astype(np.int64) for m in masks]
    absent = min(set(range(124)) - set(np.unique(np.concatenate([t.ravel() for t in truths])).tolist()))
    preds = []
    for mask in masks:
        pred_path = pred_dir / mask.parent.parent.name / mask.name
        pred = np.array(Image.open(pred_path)).astype(np.int64)
        pred[: pred.shape[0] // 2, : pred.shape[1] // 2] = absent
        Image.fromarray(pred.astype(np.uint8)).save(pred_path)
        preds.append(pred)
    truth, pred = np.concatenate([t.ravel() for t in truths]), np.concatenate([p.ravel() for p in preds])
    valid = truth != IGN
    cm = np.bincount(truth[valid] * 124 + pred[valid], minlength=124 * 124).reshape(124, 124)
    tp, in_truth, in_pred = np.diag(cm), cm.sum(1), cm.sum(0)
    iou = tp / np.maximum(in_truth + in_pred - tp, 1)
    assert (in_pred[in_truth == 0] > 0).any()  # the case does name classes absent from the truth
    in_truth_mean, union_mean = iou[in_truth > 0].mean(), iou[(in_truth + in_pred) > 0].mean()
    assert abs(in_truth_mean - union_mean) > 0.01
    assert score(case, pred_dir, "val")["mIoU"] == pytest.approx(in_truth_mean, abs=1e-9)


def test_score_warns_about_predicted_values_outside_the_classes(shared_dir, tmp_path):
    import shutil

    import numpy as np
    from PIL import Image
    from score import score

    case = shared_dir / "golden" / "vspw_case"
    pred_dir = tmp_path / "pred"
    shutil.copytree(case / "pred", pred_dir)
    victim = sorted(pred_dir.glob("*/*.png"))[0]
    pred = np.array(Image.open(victim))
    pred[0, 0] = 200  # a palette index, say, instead of a class id
    Image.fromarray(pred).save(victim)
    with pytest.warns(UserWarning, match=rf"1 prediction PNG\(s\) hold values outside the 124 classes.*{victim}: \[200\]"):
        score(case, pred_dir)
