"""Looking at results: palettes and overlays, video files in and out, streaming prediction (equal to
the evaluation pipeline), `src/predict.py` end to end, its errors, image panels in an offline W&B
run, and `scripts/plot_run.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import plot_run
import pytest
import torch
from conftest import ROOT, SMALL, compose_config
from hydra.utils import instantiate
from PIL import Image

import predict as predict_entry
import train as train_entry
from ssltm.data.dataset import ClipDataset, ClipItem
from ssltm.data.info import DatasetInfo
from ssltm.data.video_files import FrameReader, Mp4Writer
from ssltm.errors import USER_ERRORS, ConfigError, DataError
from ssltm.inference.outputs import Comparison
from ssltm.inference.streaming import StreamingSegmenter
from ssltm.inference.visualize import confusion_matrix_image, overlay, panel

INFO = DatasetInfo("two", ("road", "car"), ((10, 20, 30), (200, 100, 0)))


def test_colourize_and_overlay_of_a_known_label_map():
    label = np.array([[0, 1], [255, 1]], np.uint8)
    image = np.full((2, 2, 3), 100, np.uint8)
    colour = INFO.colourize(label)
    assert colour[0, 0].tolist() == [10, 20, 30] and colour[0, 1].tolist() == [200, 100, 0]
    assert colour[1, 0].tolist() == [0, 0, 0]  # ignore -> black
    blended = overlay(image, label, INFO, alpha=0.5)
    assert blended[0, 0].tolist() == [55, 60, 65]  # (100 + 10) / 2, (100 + 20) / 2, ...
    assert blended[0, 1].tolist() == [150, 100, 50]
    assert blended[1, 0].tolist() == [100, 100, 100]  # ignored pixels keep the frame
    assert overlay(image, label, INFO, alpha=0.0).tolist() == image.tolist()
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, label[:1], INFO)


def test_panel_and_confusion_matrix_pictures():
    tiles = [("a", np.zeros((40, 200, 3), np.uint8)), ("b", np.full((40, 200, 3), 255, np.uint8))]
    picture = panel(tiles, gap=2)
    assert picture.shape == (40 + 14, 2 * 200 + 2, 3)
    assert picture[20:, 202:].min() == 255 and picture[20:, :200].max() == 0
    small = panel([("a", np.zeros((10, 20, 3), np.uint8))], min_width=160)  # enlarged 8x
    assert small.shape == (80 + 14, 160, 3)
    with pytest.raises(ValueError, match="differ in size"):
        panel([("a", np.zeros((4, 4, 3), np.uint8)), ("b", np.zeros((5, 4, 3), np.uint8))], min_width=1)
    confmat = np.array([[5, 0, 0], [1, 3, 0]])
    assert confusion_matrix_image(confmat, ["road", "car"]).shape[2] == 3


def test_mp4_written_then_read_back(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8) for _ in range(5)]
    with Mp4Writer(tmp_path / "v.mp4", fps=5) as writer:
        for frame in frames:
            writer.write(frame)
    reader = FrameReader(tmp_path / "v.mp4")
    back = list(reader)
    assert len(back) == 5 and reader.fps == pytest.approx(5)
    assert back[0].shape == (48, 64, 3)
    assert np.abs(back[2].astype(int) - frames[2]).mean() < 12  # lossy, but the same picture


def test_frame_folder_reader_and_its_errors(tmp_path):
    with pytest.raises(DataError, match="no file or folder"):
        FrameReader(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        FrameReader(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither a folder of frames nor a video"):
        FrameReader(tmp_path / "notes.txt")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(2000))
    with pytest.raises(DataError, match="corrupt.mp4"):
        list(FrameReader(corrupt))
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (8, 6)).save(frames / "b.png")
    Image.new("RGB", (8, 6), (255, 0, 0)).save(frames / "a.png")
    reader = FrameReader(frames)
    assert list(reader.names()) == ["a", "b"] and list(reader)[0][0, 0].tolist() == [255, 0, 0]
    Image.new("RGB", (9, 6)).save(frames / "c.png")
    with pytest.raises(DataError, match="c.png"):
        list(FrameReader(frames))


@pytest.mark.parametrize("cache", [True, False], ids=["cached_features", "recomputed"])
@pytest.mark.parametrize("variant", [[], ["model.stt.enabled=false"], ["model.context=qfce"], ["model=per_frame"]],
                         ids=["ssltm", "no_stt", "qfce", "per_frame"])
def test_streaming_equals_the_evaluation_clips(variant, cache, tmp_path):
    """Frame by frame, with only the needed history kept, the logits equal those of the data set's
    evaluation clips (same clip indices, same reference, same normalisation), whether SSLTM's
    per-frame features are cached and reused across clips or every clip is recomputed."""
    cfg = compose_config("train", [*SMALL, "model=ssltm", "data.clip.eval_distance=5", *variant], tmp_path)
    datamodule = instantiate(cfg.data)
    torch.manual_seed(0)
    network = instantiate(cfg.model).eval()
    video = datamodule.source.videos("val")[0]
    dataset = ClipDataset([video], [ClipItem(0, t) for t in range(video.num_frames)], datamodule.clip,
                          datamodule.eval_transform, train=False, with_label=False)
    stream = StreamingSegmenter(network, datamodule.clip, datamodule.eval_transform, cache_features=cache)
    assert stream.cache_features == (cache and variant != ["model=per_frame"])
    with torch.no_grad():
        for t in range(video.num_frames):
            sample = dataset[t]
            expected = network(sample["frames"][None], sample["reference"][None]).logits[0]
            got = stream.push(video.frame(t))
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            assert len(stream.frames) <= stream.history + 1  # memory stays flat
    assert stream.history == 5


def test_streaming_a_network_trained_on_resized_frames_answers_at_the_frame_size(tmp_path):
    """`data.eval_transform.resize`: the network runs at the reduced size the data set was
    trained and scored at; streaming prediction upsamples its logits back to the input frame."""
    cfg = compose_config("train", [*SMALL, "model=per_frame", "+data.eval_transform.resize=[24,32]"], tmp_path)
    datamodule = instantiate(cfg.data)
    torch.manual_seed(0)
    network = instantiate(cfg.model).eval()
    video = datamodule.source.videos("val")[0]
    dataset = ClipDataset([video], [ClipItem(0, 0)], datamodule.clip, datamodule.eval_transform,
                          train=False, with_label=False)
    stream = StreamingSegmenter(network, datamodule.clip, datamodule.eval_transform)
    with torch.no_grad():
        sample = dataset[0]
        small = network(sample["frames"][None], sample["reference"][None]).logits  # 1 K 24 32
        got = stream.push(video.frame(0))
    assert small.shape[-2:] == (24, 32) and got.shape[-2:] == video.frame(0).shape[:2] == (48, 64)
    expected = torch.nn.functional.interpolate(small, size=(48, 64), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small Mean Teacher run with W&B offline and image panels every step."""
    out = tmp_path_factory.mktemp("mt_run")
    cfg = compose_config("train", [*SMALL, "method=mean_teacher", "logger=many", "trainer.max_epochs=1",
                                   "callbacks.image_panels.every_n_steps=1"], out)
    train_entry.run(cfg)
    return out


def test_offline_wandb_run_has_panels_table_and_confusion_matrix(checkpoint):
    assert os.environ["WANDB_MODE"] == "offline"
    runs = list((checkpoint / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "one offline run, nothing synced"
    media = runs[0] / "files" / "media"
    assert len(list((media / "images" / "train").glob("panel_*.png"))) == 2  # two training steps
    assert list((media / "images" / "val").glob("panel_*.png"))
    assert list((media / "images" / "val").glob("confusion_matrix_*.png"))
    table = next((media / "table" / "val").glob("per_class_iou_*.table.json"))
    assert json.loads(table.read_text())["columns"] == ["class", "IoU"]
    assert {p.name for p in (checkpoint / "panels").glob("*.png")} >= {
        "train_step000001.png", "train_step000002.png", "val_confusion_step000002.png"}
    # the Mean Teacher panel: frame, truth, student, teacher, pseudo-label, confidence in 2 rows
    picture = np.asarray(Image.open(checkpoint / "panels" / "train_step000001.png"))
    tile_h, tile_w = 3 * 48 + 14, 3 * 64  # 48x64 tiles enlarged 3x to reach 160 px, a title strip
    assert picture.shape[:2] == (2 * tile_h + 2, 3 * tile_w + 2 * 2)


def test_predict_on_a_video_file_writes_every_output(checkpoint, tmp_path):
    cfg = compose_config("train", SMALL, tmp_path)
    video = instantiate(cfg.data.source).videos("val")[0]
    with Mp4Writer(tmp_path / "clip.mp4", fps=8) as writer:
        for t in range(12):
            writer.write(video.frame(t))
    ckpt = checkpoint / "checkpoints" / "last.ckpt"
    pcfg = compose_config("predict", [f"ckpt_path={ckpt}", f"input={tmp_path / 'clip.mp4'}",
                                      f"output={tmp_path / 'pred'}", f"compare_ckpt_path={ckpt}",
                                      "compare_network=student", "top_k=3"], tmp_path)
    summary = predict_entry.run(pcfg)
    out = tmp_path / "pred"
    assert summary["frames"] == 12 and summary["dataset"] == "synthetic"
    for folder in ("labels", "colour", "overlay"):
        assert len(list((out / folder).glob("*.png"))) == 12, folder
    label = np.asarray(Image.open(out / "labels" / "000000.png"))
    assert label.shape == (48, 64) and label.max() < 7
    assert len(list(FrameReader(out / "overlay.mp4"))) == 12
    assert len(list((out / "compare").glob("*.png"))) == 3
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0] == "frame,name,disagreement"
    assert json.loads((out / "predict.json").read_text())["compare"]["names"] == ["A", "B"]
    # the panels are the frames of most disagreement, in that order
    shares = sorted((float(r.split(",")[2]) for r in rows[1:]), reverse=True)
    assert [p["disagreement"] for p in summary["compare"]["panels"]] == pytest.approx(shares[:3], abs=1e-6)


def test_predict_on_a_frame_folder_with_the_teacher(checkpoint, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(4):
        Image.fromarray(np.full((48, 64, 3), 40 * t, np.uint8)).save(frames / f"f{t}.jpg")
    pcfg = compose_config("predict", [f"ckpt_path={checkpoint / 'checkpoints' / 'last.ckpt'}",
                                      f"input={frames}", "network=teacher", "save=[labels]",
                                      f"output={tmp_path / 'pred'}"], tmp_path)
    summary = predict_entry.run(pcfg)
    assert summary["frames"] == 4 and summary["network"] == "teacher"
    for bad, message in [("save=[labels,gif]", "save: unknown output"),
                         (f"compare_ckpt_path={checkpoint / 'checkpoints' / 'last.ckpt'}", "names: give the two")]:
        cfg = compose_config("predict", [f"ckpt_path={checkpoint / 'checkpoints' / 'last.ckpt'}", f"input={frames}",
                                         bad, "names=[only_one]"], tmp_path / "bad")
        with pytest.raises(USER_ERRORS, match=message):
            predict_entry.run(cfg)
    assert sorted(p.name for p in (tmp_path / "pred" / "labels").iterdir()) == [f"f{t}.png" for t in range(4)]
    assert not (tmp_path / "pred" / "overlay.mp4").exists()


def test_predict_never_mixes_with_an_earlier_prediction(checkpoint, tmp_path):
    """A folder that holds a prediction is refused; overwrite=true clears it first, so a 3-frame
    run over a 10-frame one leaves 3 label maps and a predict.json that describes them."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(10):
        Image.fromarray(np.full((48, 64, 3), 20 * t, np.uint8)).save(frames / f"{t:06d}.png")
    ckpt = checkpoint / "checkpoints" / "last.ckpt"
    out = tmp_path / "pred"

    def predict(*extra: str) -> dict:
        return predict_entry.run(compose_config(
            "predict", [f"ckpt_path={ckpt}", f"input={frames}", f"output={out}", "save=[labels]", *extra], tmp_path))

    assert predict()["frames"] == 10
    with pytest.raises(predict_entry.ConfigError, match=rf"output: {out} already holds files .*overwrite=true"):
        predict("max_frames=3")
    assert len(list((out / "labels").iterdir())) == 10  # refused before writing anything
    assert predict("max_frames=3", "overwrite=true")["frames"] == 3
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{t:06d}.png" for t in range(3)]
    assert json.loads((out / "predict.json").read_text())["frames"] == 3


def test_two_frames_with_one_name_are_an_error_naming_both(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for suffix in (".png", ".jpg"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(frames / f"000003{suffix}")
    with pytest.raises(DataError, match=r"000003.jpg and .*000003.png have the same name without their extension"):
        FrameReader(frames)


def test_comparison_keeps_the_frames_of_most_disagreement(tmp_path):
    comparison = Comparison(tmp_path, ("a", "b"), top_k=2)
    image = np.zeros((4, 4, 3), np.uint8)
    zero = np.zeros((4, 4), np.uint8)
    for t, differing in enumerate([1, 8, 0, 4, 16]):
        b = zero.copy()
        b.flat[:differing] = 1
        comparison.add(t, f"{t:02d}", image, zero, b, image, image)
    panels = comparison.close()
    assert [p["frame"] for p in panels] == [4, 1] and panels[0]["disagreement"] == 1.0
    assert comparison.mean_disagreement() == pytest.approx((1 + 8 + 0 + 4 + 16) / 80)


def _predict_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "src" / "predict.py"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_command_line_missing_input_or_checkpoint_is_one_line(checkpoint, tmp_path):
    ckpt = checkpoint / "checkpoints" / "last.ckpt"
    proc = _predict_cli(f"ckpt_path={ckpt}", f"input={tmp_path / 'nothing.mp4'}", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 1 and proc.stderr.strip() == f"error: input: no file or folder at {tmp_path / 'nothing.mp4'}"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 100)
    proc = _predict_cli(f"ckpt_path={ckpt}", f"input={corrupt}", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: input: {corrupt}")
    assert "Traceback" not in proc.stderr
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (8, 6)).save(frames / "0.png")
    proc = _predict_cli(f"ckpt_path={tmp_path / 'none.ckpt'}", f"input={frames}", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 1 and "no file at" in proc.stderr and "Traceback" not in proc.stderr


def test_plot_run_draws_the_curves_of_a_csv_log(checkpoint, tmp_path):
    assert plot_run.main([str(checkpoint), f"out={tmp_path / 'c.png'}"]) == 0
    assert Image.open(tmp_path / "c.png").size[0] > 400
    assert plot_run.main([str(tmp_path)]) == 1  # no csv/metrics.csv: a message, not a traceback


def test_wandb_runs_are_named_by_their_overrides_and_grouped_without_the_seed(tmp_path):
    from hydra.core.hydra_config import HydraConfig

    cfg = compose_config("train", ["logger=wandb", "seed=3", "model.gcc.k=2"], tmp_path, return_hydra_config=True)
    assert compose_config("train", ["logger=wandb"], tmp_path).logger.wandb.name == "train"  # no Hydra run
    assert list(compose_config("train", ["logger=[csv,wandb]"], tmp_path).logger) == ["csv", "wandb"]
    HydraConfig.instance().set_config(cfg)
    try:
        assert cfg.logger.wandb.name == "train/logger=wandb,model.gcc.k=2,seed=3"
        assert cfg.logger.wandb.group == "train/logger=wandb,model.gcc.k=2"
    finally:
        HydraConfig.instance().cfg = None


def test_pictures_go_to_tensorboard_too(tmp_path):
    from types import SimpleNamespace

    from pytorch_lightning.loggers import TensorBoardLogger

    from ssltm.runs.callbacks import log_picture

    logger = TensorBoardLogger(tmp_path, name=None, version="")
    log_picture(SimpleNamespace(loggers=[logger], global_step=7), "val/panel", np.zeros((8, 8, 3), np.uint8))
    logger.experiment.flush()
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


@pytest.mark.parametrize("bad", ["../escaped", "/tmp/abs", "..", ".hidden", "a/b"])
def test_compared_models_names_cannot_leave_the_output_folder(checkpoint, tmp_path, bad):
    ckpt = checkpoint / "checkpoints" / "last.ckpt"
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (64, 48)).save(frames / "000000.png")
    cfg = compose_config("predict", [f"ckpt_path={ckpt}", f"compare_ckpt_path={ckpt}", f"input={frames}",
                                     f"output={tmp_path / 'out'}", f"names=[A,'{bad}']"], tmp_path)
    with pytest.raises(ConfigError, match=r"names: .* cannot name a folder inside output"):
        predict_entry.run(cfg)
    assert not (tmp_path / "escaped").exists() and not list((tmp_path / "out").glob("*"))


def test_eval_never_writes_into_a_training_runs_folder(checkpoint, tmp_path):
    import eval as eval_entry

    ckpt = checkpoint / "checkpoints" / "last.ckpt"
    before = {p: p.read_bytes() for p in [checkpoint / "metrics.json", *(checkpoint / ".hydra").glob("*")]}
    assert checkpoint / "metrics.json" in before
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "eval.py"), f"ckpt_path={ckpt}",
                           f"hydra.run.dir={checkpoint}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().startswith(f"error: hydra.run.dir: {checkpoint} already holds a run")
    assert all(p.read_bytes() == data for p, data in before.items())  # metrics.json and .hydra/ untouched
    result, _ = eval_entry.run(compose_config("eval", [f"ckpt_path={ckpt}"], tmp_path / "own"))  # its own folder
    assert 0.0 <= result["mIoU"] <= 1.0
