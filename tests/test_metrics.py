"""mIoU and mVC against values computed by hand on tiny arrays, and the golden VSPW case."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ssltm.metrics import MeanIoU, VideoConsistency
from ssltm.metrics.video_segmentation import VideoSegmentationMetrics, reference_subset

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
