"""CamVid (SegNet layout): small folders made by the test, and the real copy in ../shared."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config
from PIL import Image

import train as train_entry
from ssltm.constants import IGNORE_INDEX
from ssltm.data.camvid import CamVidSource
from ssltm.errors import DataError


def make_camvid(root, train_frames=12, val_frames=5):
    rng = np.random.default_rng(0)
    for split, count, sequence in (("train", train_frames, "0001TP"), ("val", val_frames, "0016E5")):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(count):
            name = f"{sequence}_{6690 + 30 * i:06d}.png"
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / split / name)
            Image.fromarray(rng.integers(0, 12, (24, 32), dtype=np.uint8)).save(root / f"{split}annot" / name)
    return root


def test_training_sequences_are_cut_into_videos_in_temporal_order(tmp_path):
    source = CamVidSource(str(make_camvid(tmp_path, train_frames=23)), video_len=10)
    videos = source.videos("train")
    assert [v.num_frames for v in videos] == [10, 13]  # the 3-frame tail joins the last video
    names = [p.name for v in videos for p in v.frames]
    assert names == sorted(names)
    label = videos[0].label(0)
    raw = np.array(Image.open(videos[0].masks[0]))
    assert np.array_equal(label == IGNORE_INDEX, raw == 11)  # void -> ignore
    assert np.array_equal(label[raw != 11], raw[raw != 11])
    assert source.videos("val")[0].num_frames == 5


def test_a_frame_without_mask_is_named(tmp_path):
    root = make_camvid(tmp_path)
    victim = sorted((root / "trainannot").iterdir())[2]
    victim.unlink()
    with pytest.raises(DataError, match=f"frame without mask: .*{victim.name}"):
        CamVidSource(str(root)).videos("train")


def test_a_missing_folder_and_a_bad_label_value_are_named(tmp_path):
    with pytest.raises(DataError, match=r"missing folder\(s\) .*nowhere/train"):
        CamVidSource(str(tmp_path / "nowhere")).videos("train")
    root = make_camvid(tmp_path / "c")
    bad = sorted((root / "valannot").iterdir())[0]
    Image.fromarray(np.full((24, 32), 40, np.uint8)).save(bad)
    with pytest.raises(DataError, match=f"{bad.name}: label values must be 0..10 or 11 \\(ignored\\), found \\[40\\]"):
        CamVidSource(str(root)).videos("val")[0].label(0)


def test_real_camvid_has_3_sequences_367_plus_101_frames_and_11_classes(shared_dir, capsys):
    import check_data

    root = shared_dir / "camvid"
    source = CamVidSource(str(root))
    assert len(source.sequences("train")) == 3
    assert sum(v.num_frames for v in source.videos("train")) == 367
    assert [v.num_frames for v in source.videos("val")] == [101]
    assert check_data.main(["data=camvid", f"data.root={root}"]) == 0
    assert "classes=11 train_frames=367 val_frames=101" in capsys.readouterr().out


def test_real_camvid_fast_dev_run(shared_dir, tmp_path):
    cfg = compose_config("train", [
        "data=camvid", f"data.root={shared_dir / 'camvid'}", "trainer.fast_dev_run=true", "backbone=tiny",
        "model.channels=32", "data.train_transform.crop_size=[64,96]", "data.num_workers=0",
        "data.batch_size=2", "data.eval_batch_size=2", "logger=csv"], tmp_path)
    result, _ = train_entry.run(cfg)
    assert 0.0 <= result["mIoU"] <= 1.0


def test_the_camvid_bench_runs_from_the_full_resolution_folder(shared_dir, tmp_path):
    """experiment=camvid_bench as shipped: ImageNet EfficientNet-Lite0, frames resized on the fly."""
    cfg = compose_config("train", ["experiment=camvid_bench", f"data.root={shared_dir / 'camvid'}",
                                   "trainer.fast_dev_run=true", "data.eval_batch_size=4"], tmp_path)
    assert cfg.method.backbone_lr_scale == 0.1 and cfg.backbone.pretrained
    result, objects = train_entry.run(cfg)
    assert 0.0 <= result["mIoU"] <= 1.0
    groups = objects["method"].optimizers().optimizer.param_groups
    assert len(groups) == 2 and groups[0]["lr"] == pytest.approx(0.1 * groups[1]["lr"])  # the encoder at a tenth
    random = compose_config("train", ["experiment=camvid_bench", "backbone.pretrained=false"], tmp_path)
    assert random.method.backbone_lr_scale == 1.0  # from random weights, the full rate


def test_the_camvid_bench_evaluates_any_split_of_its_folder(shared_dir, tmp_path):
    """A CamVid folder with test/ and testannot/ (here a copy of val): data.split=test evaluates it."""
    import shutil

    import eval as eval_entry

    root = tmp_path / "camvid"
    for split in ("train", "val"):
        for suffix in ("", "annot"):
            shutil.copytree(shared_dir / "camvid" / f"{split}{suffix}", root / f"{split}{suffix}")
    for suffix in ("", "annot"):
        shutil.copytree(shared_dir / "camvid" / f"val{suffix}", root / f"test{suffix}")
    cfg = compose_config("train", ["experiment=camvid_bench", f"data.root={root}", "trainer.max_epochs=1",
                                   "data.steps_per_epoch=2", "trainer.check_val_every_n_epoch=1"], tmp_path / "run")
    val, _ = train_entry.run(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    test, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={ckpt}", "data.split=test"], tmp_path / "eval"))
    assert test["mIoU"] == pytest.approx(val["mIoU"], abs=1e-6)  # the same frames, the same score
