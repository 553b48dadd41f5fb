"""VSPW- and Cityscapes-layout folders built in a temp dir: reading them, and one test per defect
that the checks before training must name (src/ssltm/data/validate.py)."""

from __future__ import annotations

import check_data
import numpy as np
import prepare_cityscapes
import prepare_vspw
import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate
from PIL import Image

import train as train_entry
from ssltm.constants import IGNORE_INDEX
from ssltm.data.camvid import CamVidSource
from ssltm.data.cityscapes import CITYSCAPES_INFO, CityscapesSource
from ssltm.data.clips import ClipSampler
from ssltm.data.dataset import ClipDataset, ClipItem
from ssltm.data.image_files import FileVideo
from ssltm.data.transforms import ClipTransform
from ssltm.data.validate import check_split
from ssltm.data.vspw import VSPW_INFO, VSPW_LABELS, VSPWSource
from ssltm.errors import DataError

H, W = 24, 32
RNG = np.random.default_rng(0)


def save_frame(path, image=None, size=(H, W)):
    path.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = RNG.integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)


def save_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)


def make_vspw(root, videos=None):
    """VSPW_480p layout: split files, data/<video>/origin/*.jpg and data/<video>/mask/*.png."""
    videos = videos or {"train": {"v_train_a": 6, "v_train_b": 5}, "val": {"v_val": 5}}
    for split, lengths in videos.items():
        (root / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.txt").write_text("".join(f"{v}\n" for v in lengths))
        for video, n in lengths.items():
            for t in range(n):
                name = f"{t:08d}"
                save_frame(root / "data" / video / "origin" / f"{name}.jpg")
                mask = RNG.integers(0, 125, (H, W))
                mask[0, :4] = [0, 254, 255, 1]  # ignore values and the first class
                save_mask(root / "data" / video / "mask" / f"{name}.png", mask)
    return root


def make_cityscapes(root, split="train", cities=("aachen",), snippets=2, sequence=True):
    """leftImg8bit / gtFine (labelIds) / leftImg8bit_sequence with the labelled frame 20th of 30."""
    for city in cities:
        for s in range(snippets):
            frame = 19 + 100 * s
            key = f"{city}_{s:06d}_{frame:06d}"
            save_frame(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png")
            ids = RNG.choice([0, 7, 8, 11, 26, 33], size=(H, W))  # unlabeled, road, sidewalk, building, car, bicycle
            save_mask(root / "gtFine" / split / city / f"{key}_gtFine_labelIds.png", ids)
            if sequence:
                for i in range(30):
                    seq_key = f"{city}_{s:06d}_{frame - 19 + i:06d}"
                    save_frame(root / "leftImg8bit_sequence" / split / city / f"{seq_key}_leftImg8bit.png")
    return root


# --- reading the official layouts ---------------------------------------------------------
def test_vspw_layout_reads_videos_with_the_label_remap(tmp_path):
    root = make_vspw(tmp_path)
    videos, report = check_split(VSPWSource(str(root)), "train", ClipSampler(num_frames=4), "full", progress=False)
    assert [v.video_id for v in videos] == ["v_train_a", "v_train_b"]
    assert (report.videos, report.frames, report.annotated) == (2, 11, 11)
    raw = np.array(Image.open(videos[0].masks[0]))
    label = videos[0].label(0)
    assert list(label[0, :4]) == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 0]  # 0, 254, 255 -> ignore; 1 -> 0
    valid = (raw >= 1) & (raw <= 124)
    assert np.array_equal(label[valid], raw[valid] - 1)
    assert report.histogram.sum() == 11 * H * W and len(report.histogram) == VSPW_INFO.num_classes + 1


def test_cityscapes_layout_reads_snippets_with_train_ids_from_cityscapesscripts(tmp_path):
    root = make_cityscapes(tmp_path)
    videos = CityscapesSource(str(root)).videos("train")
    assert len(videos) == 2 and all(v.num_frames == 30 and v.annotated == [19] for v in videos)
    assert videos[0].frames[19].name == "aachen_000000_000019_leftImg8bit.png"
    raw = np.array(Image.open(videos[0].masks[19]))
    label = videos[0].label(19)
    expected = {0: IGNORE_INDEX, 7: 0, 8: 1, 11: 2, 26: 13, 33: 18}  # road, sidewalk, building, car, bicycle
    for raw_id, train_id in expected.items():
        assert (label[raw == raw_id] == train_id).all()
    assert CITYSCAPES_INFO.num_classes == 19 and CITYSCAPES_INFO.classes[13] == "car"
    alone = CityscapesSource(str(root), sequence=False).videos("train")
    assert [v.num_frames for v in alone] == [1, 1] and alone[0].annotated == [0]


def test_vspw_and_cityscapes_data_modules_serve_clips(tmp_path):
    for name, root in (("vspw", make_vspw(tmp_path / "v")), ("cityscapes", make_cityscapes(tmp_path / "c"))):
        if name == "cityscapes":
            make_cityscapes(tmp_path / "c", split="val", snippets=1)
        cfg = compose_config("train", [
            f"data={name}", f"data.root={root}", "data.num_workers=0", "data.batch_size=2",
            "data.train_transform.crop_size=[16,16]", "data.validate=full"], tmp_path)
        dm = instantiate(cfg.data)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))[0]
        assert batch["labelled"]["frames"].shape == (2, 4, 3, 16, 16)
        assert batch["unlabelled"]["frames"].shape == (2, 4, 3, 16, 16)
        assert next(iter(dm.val_dataloader()))["frames"].shape[-2:] == (H, W)  # full resolution


def test_clip_frames_and_reference_receive_the_same_geometric_transform(tmp_path):
    # every frame is the same known pattern (colour = column, label = row), so any difference in
    # scale, crop or flip between the frames, the reference and the label would show
    column = np.tile(np.linspace(0, 255, W).astype(np.uint8)[None, :, None], (H, 1, 3))
    root = tmp_path / "vspw"
    for t in range(8):
        save_frame(root / "data" / "v" / "origin" / f"{t:08d}.jpg", column)
        save_mask(root / "data" / "v" / "mask" / f"{t:08d}.png", np.repeat(np.arange(1, H + 1)[:, None], W, 1))
    frames = sorted((root / "data" / "v" / "origin").glob("*.jpg"))
    masks = {t: p for t, p in enumerate(sorted((root / "data" / "v" / "mask").glob("*.png")))}
    videos = [FileVideo("v", frames, masks, VSPW_LABELS)]
    transform = ClipTransform(crop_size=(16, 20), scale_range=(0.7, 1.6), hflip=True, mean=(0, 0, 0), std=(1, 1, 1))
    dataset = ClipDataset(videos, [ClipItem(0, 7)], ClipSampler(4, 1, 3, 7), transform, train=True, with_label=True)
    torch.manual_seed(0)
    seen_flip = set()
    for _ in range(12):
        sample = dataset[0]
        frames, reference, label = sample["frames"], sample["reference"], sample["label"]
        assert all(torch.equal(frames[0], frames[i]) for i in range(4))
        assert torch.equal(frames[0], reference)
        valid = label != IGNORE_INDEX
        assert ((label == label[:, :1]) | ~valid).all()  # label rows stay rows: no transpose or shear
        row = frames[0, 0, valid.any(1)][0]
        seen_flip.add(bool(row[0] > row[-1]))  # the column pattern runs right-to-left when flipped
    assert seen_flip == {True, False}


# --- one test per defect: the error names the offending file -------------------------------
def _check(root, split="train", level="full", clip=None):
    check_split(VSPWSource(str(root)), split, clip or ClipSampler(num_frames=2), level, progress=False)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=f"missing folder {tmp_path / 'data'}"):
        _check(tmp_path)
    make_cityscapes(tmp_path / "c", sequence=False)
    with pytest.raises(DataError, match="missing folder .*leftImg8bit_sequence.*sequence=false"):
        CityscapesSource(str(tmp_path / "c")).videos("train")


def test_missing_split_file_is_named(tmp_path):
    root = make_vspw(tmp_path)
    (root / "val.txt").unlink()
    with pytest.raises(DataError, match=f"missing split file {root / 'val.txt'}"):
        _check(root, "val")


def test_frame_without_mask_is_named(tmp_path):
    root = make_vspw(tmp_path)
    victim = root / "data" / "v_train_b" / "mask" / "00000003.png"
    victim.unlink()
    with pytest.raises(DataError, match=r"frame without mask: .*v_train_b/origin/00000003\.jpg"):
        _check(root)
    root = make_cityscapes(tmp_path / "c")
    victim = next((root / "gtFine" / "train").glob("*/*_000119_gtFine_labelIds.png"))
    victim.unlink()
    with pytest.raises(DataError, match=r"frame without mask: .*aachen_000001_000119_leftImg8bit\.png"):
        CityscapesSource(str(root)).videos("train")


def test_mask_without_frame_is_named(tmp_path):
    root = make_vspw(tmp_path)
    (root / "data" / "v_train_a" / "origin" / "00000002.jpg").unlink()
    with pytest.raises(DataError, match=r"mask without frame: .*v_train_a/mask/00000002\.png"):
        _check(root)


def test_mask_of_another_size_is_named(tmp_path):
    root = make_vspw(tmp_path)
    victim = root / "data" / "v_train_a" / "mask" / "00000001.png"
    save_mask(victim, np.ones((H + 2, W), np.uint8))
    for level in ("layout", "full"):
        with pytest.raises(DataError, match=rf"mask size \({H + 2}, {W}\) differs .*{victim}"):
            _check(root, level=level)


def test_truncated_image_is_named(tmp_path):
    root = make_vspw(tmp_path)
    victim = root / "data" / "v_train_b" / "origin" / "00000004.jpg"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"{victim}: unreadable or truncated image"):
        _check(root, level="full")
    victim.write_bytes(b"not an image")
    with pytest.raises(DataError, match=rf"{victim}: unreadable image"):
        _check(root, level="layout")


def test_label_value_outside_the_range_is_named(tmp_path):
    root = make_vspw(tmp_path)
    victim = root / "data" / "v_train_a" / "mask" / "00000005.png"
    save_mask(victim, np.full((H, W), 200))
    with pytest.raises(DataError, match=rf"{victim}: label values must be .*found \[200\]"):
        _check(root)
    with pytest.raises(DataError, match=rf"{victim}: label values"):  # and when read lazily
        VSPWSource(str(root)).videos("train")[0].label(5)


def test_video_shorter_than_a_clip_is_named_in_a_warning_not_an_error(tmp_path, recwarn):
    root = make_vspw(tmp_path)
    _check(root, "val", clip=ClipSampler(num_frames=3, step=2))  # needs 5 frames: v_val has 5
    assert not [w for w in recwarn if "shorter than a clip" in str(w.message)]
    with pytest.warns(UserWarning, match=r"shorter than a clip of data.clip .*needs 6 frames\).*v_train_b \(.*v_train_b/origin\) has 5"):
        _check(root, clip=ClipSampler(num_frames=6))


def test_empty_split_is_named(tmp_path):
    root = make_vspw(tmp_path)
    (root / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=rf"{root / 'val.txt'} lists no videos \(the split is empty\)"):
        _check(root, "val")
    (tmp_path / "camvid" / "train").mkdir(parents=True)
    (tmp_path / "camvid" / "trainannot").mkdir()
    with pytest.raises(DataError, match=r"the split is empty .*camvid/train"):
        CamVidSource(str(tmp_path / "camvid")).videos("train")


def test_one_message_lists_the_first_few_of_many_defects(tmp_path):
    root = make_vspw(tmp_path)
    for t in range(6):
        (root / "data" / "v_train_a" / "mask" / f"{t:08d}.png").unlink()
    with pytest.raises(DataError) as err:
        _check(root)
    message = str(err.value)
    assert "6 problem(s)" in message and "... and 1 more" in message
    assert message.count("frame without mask") == 5


# --- the checks run before training, and through the scripts --------------------------------
def test_training_stops_before_the_first_step_naming_the_bad_file(tmp_path):
    root = make_vspw(tmp_path / "vspw")
    victim = root / "data" / "v_val" / "mask" / "00000000.png"
    save_mask(victim, np.full((H, W), 130))
    cfg = compose_config("train", [
        "data=vspw", f"data.root={root}", "data.validate=full", "backbone=tiny", "model.channels=16",
        "data.num_workers=0", "trainer.fast_dev_run=true"], tmp_path)
    with pytest.raises(DataError, match=str(victim)):
        train_entry.run(cfg)


def test_a_frame_damaged_during_training_stops_the_run_after_saving_it(tmp_path):
    root = make_vspw(tmp_path / "vspw")
    out = tmp_path / "run"
    cfg = compose_config("train", [
        "data=vspw", f"data.root={root}", "backbone=tiny", "model.channels=16", "data.num_workers=0",
        "data.batch_size=2", "data.steps_per_epoch=6", "trainer.max_epochs=1", "logger=csv",
        "callbacks.rich_progress_bar=null", "+callbacks.damage._target_=run_helpers.CorruptFramesAtStep",
        f"+callbacks.damage.folder={root / 'data'}", "+callbacks.damage.step=2"], out)
    with pytest.raises(DataError, match=rf"{root / 'data'}/\S+\.jpg: unreadable .*training stopped after step \d; "
                                        rf"{out / 'checkpoints' / 'last.ckpt'} saved: fix the file") as stopped:
        train_entry.run(cfg)
    step = int(str(stopped.value).split("after step ")[1].split(";")[0])  # 2, or 3 if a batch was prefetched
    assert step in (2, 3) and torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step


def test_check_data_and_prepare_scripts_summarise_and_fail_clearly(tmp_path, capsys):
    root = make_vspw(tmp_path / "vspw")
    assert prepare_vspw.main([f"data.root={root}"]) == 0
    assert "classes=124 train_frames=11 val_frames=5" in capsys.readouterr().out
    (root / "label_num_dic_final.json").write_text('{"others": 0, "wall": 1, "door": 2}')
    assert prepare_vspw.main([f"data.root={root}"]) == 1
    assert "raw value 2 is 'door' there, 'ceiling' here" in capsys.readouterr().err

    city = make_cityscapes(tmp_path / "city", sequence=False)
    make_cityscapes(city, split="val", snippets=1, sequence=False)
    assert prepare_cityscapes.main([f"data.root={city}", f"out={tmp_path / 'summary.json'}"]) == 0
    out = capsys.readouterr().out
    assert "data.source.sequence=false data.clip.num_frames=1" in out
    assert "classes=19 train_frames=2 val_frames=1" in out
    assert (tmp_path / "summary.json").is_file()

    (city / "gtFine" / "val").rename(tmp_path / "gone")
    assert check_data.main(["data=cityscapes", f"data.root={city}", "data.source.sequence=false",
                            "data.clip.num_frames=1"]) == 1
    assert f"missing folder {city / 'gtFine' / 'val'}" in capsys.readouterr().out


def test_evaluation_samples_carry_the_noisy_clean_code_of_their_reference(tmp_path):
    # frames 0..3: class 1 only; frame 4 adds class 2. With d=3, query 7 (reference 4) is noisy
    # only if its own mask lacks class 2: query 7 lacks it, query 6 (reference 3) is clean.
    root = tmp_path / "v"
    masks = {}
    for t in range(8):
        save_frame(root / "origin" / f"{t:08d}.jpg")
        mask = np.full((H, W), 2, np.uint8)  # raw 2 -> class 1
        if t == 4:
            mask[:4] = 3  # raw 3 -> class 2
        save_mask(root / "mask" / f"{t:08d}.png", mask)
        masks[t] = root / "mask" / f"{t:08d}.png"
    frames = sorted((root / "origin").glob("*.jpg"))
    video = FileVideo("v", frames, masks, VSPW_LABELS)
    items = [ClipItem(0, t) for t in range(8)]
    sampler = ClipSampler(2, 1, 3, 3, eval_distance=3)
    dataset = ClipDataset([video], items, sampler, ClipTransform(), train=False, with_label=True, with_subset=True)
    codes = [dataset[i]["meta"]["subset"] for i in range(8)]
    # query 0: reference is itself (unknown); 1..3: reference 0 (clean); 4: reference 1 (clean,
    # the query holds more); 5, 6: references 2, 3 (clean); 7: reference 4 holds class 2 (noisy)
    assert codes == [-1, 0, 0, 0, 0, 0, 0, 1]


def test_a_truncated_validation_frame_under_the_layout_check_keeps_the_training(tmp_path):
    root = make_vspw(tmp_path / "vspw")
    victim = root / "data" / "v_val" / "origin" / "00000002.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 4 // 5])  # the header still reads
    out = tmp_path / "run"
    cfg = compose_config("train", [
        "data=vspw", f"data.root={root}", "data.validate=layout", "backbone=tiny", "model.channels=16",
        "data.num_workers=0", "data.batch_size=2", "data.steps_per_epoch=3", "trainer.max_epochs=1",
        "logger=csv", "callbacks.rich_progress_bar=null"], out)
    with pytest.raises(DataError, match=rf"{victim}: unreadable .*training stopped after step 3; "
                                        rf"{out / 'checkpoints' / 'last.ckpt'} saved: fix the file"):
        train_entry.run(cfg)
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


def test_a_video_listed_twice_in_a_split_file_is_one_line(tmp_path):
    root = make_vspw(tmp_path / "vspw")
    (root / "val.txt").write_text("v_val\nv_val\n")
    with pytest.raises(DataError, match=rf"{root / 'val.txt'} lists 1 video\(s\) more than once: v_val$"):
        _check(root, "val", level="layout")


def test_labelled_frames_that_are_all_void_are_one_line_before_training(tmp_path):
    root = make_vspw(tmp_path / "vspw")
    for mask in (root / "data").glob("v_train_*/mask/*.png"):
        save_mask(mask, np.zeros((H, W)))  # 0: VSPW's "others", ignored
    cfg = compose_config("train", [
        "data=vspw", f"data.root={root}", "data.validate=full", "backbone=tiny", "model.channels=16",
        "data.num_workers=0", "trainer.fast_dev_run=true"], tmp_path)
    with pytest.raises(DataError, match=r"every pixel of the 2 labelled training frame\(s\) is void .* e\.g\. "
                                        rf"{root / 'data'}/v_train_a/mask/\d+\.png"):
        train_entry.run(cfg)
