"""Mean Teacher: the EMA teacher by hand, no gradient to it, pseudo-label threshold, aligned views."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONF
from hydra.utils import instantiate

import train as train_entry
from ssltm.constants import IGNORE_INDEX
from ssltm.data.transforms import ClipPhotometric
from ssltm.methods.mean_teacher import MeanTeacherMethod, pseudo_labels, sigmoid_rampup
from ssltm.models.backbones import TimmBackbone
from ssltm.models.per_frame import PerFrameSegmenter


def make_method(**kwargs) -> MeanTeacherMethod:
    torch.manual_seed(0)
    model = PerFrameSegmenter(TimmBackbone("test_resnet"), num_classes=3, channels=16)
    return MeanTeacherMethod(model, functools.partial(torch.optim.SGD, lr=0.1), None, **kwargs)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_teacher_is_the_ema_of_student_parameters_and_buffers_computed_by_hand():
    method = make_method(ema_decay=0.9)
    method.train()
    optimizer = torch.optim.SGD(method.model.parameters(), lr=0.1)
    expected = snapshot(method.model)  # the teacher starts as a copy
    for step in range(5):
        frames = torch.randn(2, 1, 3, 32, 32)
        out = method.model(frames, frames[:, 0])  # batch norm statistics move too
        optimizer.zero_grad()
        out.logits.mean().backward()
        optimizer.step()
        method.update_teacher()
        d = min(1 - 1 / (step + 1), 0.9)
        for key, value in method.model.state_dict().items():
            if value.dtype.is_floating_point:
                expected[key] = d * expected[key] + (1 - d) * value
            else:
                expected[key] = value.clone()
    teacher = method.teacher.state_dict()
    assert any("running_mean" in k for k in teacher)
    for key, value in expected.items():
        assert torch.allclose(teacher[key], value, atol=1e-6), key
    assert int(method.ema_step) == 5


def test_teacher_gets_no_gradient_and_stays_in_eval_mode():
    method = make_method()
    method.train()
    assert not method.teacher.training and all(not m.training for m in method.teacher.modules())
    assert all(not p.requires_grad for p in method.teacher.parameters())
    frames = torch.randn(2, 1, 3, 32, 32)
    batch = {
        "labelled": {"frames": frames, "reference": frames[:, 0], "label": torch.randint(0, 3, (2, 32, 32))},
        "unlabelled": {"frames": frames, "reference": frames[:, 0]},
    }
    method.confidence_threshold = 0.0  # every pixel pseudo-labelled
    loss = method.training_loss(batch, 0)
    loss.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    assert any(p.grad is not None for p in method.model.parameters())
    # the optimiser only sees the student
    optimizer = method.optimizer_factory(params=method.trainable_parameters())
    ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not ids & {id(p) for p in method.teacher.parameters()}


def test_teacher_sees_the_weak_view_and_the_student_the_strong_one():
    """The teacher labels the unlabelled clip as the loader served it (weak view, untouched); the
    student's unlabelled forward gets the photometrically augmented clip and reference, and the
    pseudo-labels it learns from are the teacher's argmax where confident."""
    method = make_method()
    method.train()
    frames = torch.rand(2, 1, 3, 32, 32)
    reference = torch.rand(2, 3, 32, 32)
    batch = {
        "labelled": {"frames": torch.rand(2, 1, 3, 32, 32), "reference": torch.rand(2, 3, 32, 32),
                     "label": torch.randint(0, 3, (2, 32, 32))},
        "unlabelled": {"frames": frames.clone(), "reference": reference.clone()},
    }
    seen: dict[str, list] = {"teacher": [], "student": []}

    def recorder(name, module):
        forward = module.forward

        def record(frames, reference, memory_labels=None):
            outputs = forward(frames, reference, memory_labels)
            seen[name].append((frames.clone(), reference.clone(), memory_labels, outputs.logits.detach()))
            return outputs
        return record

    method.teacher.forward = recorder("teacher", method.teacher)
    method.model.forward = recorder("student", method.model)
    method.confidence_threshold = 0.0  # every pixel pseudo-labelled: the targets are the argmax
    method.training_loss(batch, 0)
    ((t_frames, t_reference, _, t_logits),) = seen["teacher"]
    assert torch.equal(t_frames, frames) and torch.equal(t_reference, reference)  # the weak view
    _labelled, (s_frames, s_reference, s_targets, _) = seen["student"]
    assert s_frames.shape == frames.shape and not torch.allclose(s_frames, frames)  # the strong view
    assert not torch.allclose(s_reference, reference)
    assert torch.equal(s_targets, t_logits.argmax(1))  # GCC memory labels = the teacher's argmax


def test_pseudo_labels_below_the_threshold_are_ignored():
    # pixel 0: confident class 1; pixel 1: uncertain; pixel 2: exactly at the threshold
    logits = torch.log(torch.tensor([[0.05, 0.9, 0.05], [0.4, 0.3, 0.3], [0.8, 0.1, 0.1]])).T.reshape(1, 3, 1, 3)
    labels, confidence = pseudo_labels(logits, threshold=0.8)
    assert labels.tolist() == [[[1, IGNORE_INDEX, 0]]]
    assert confidence[0, 0].tolist() == pytest.approx([0.9, 0.4, 0.8])
    assert MeanTeacherMethod.unsupervised_loss(logits, torch.full_like(labels, IGNORE_INDEX)).item() == 0.0


def test_strong_augmentation_keeps_student_and_teacher_pixels_aligned():
    """A known pattern (bright and dark squares): after the photometric augmentation every pixel
    at a square's centre keeps its side of the clip's median, in every frame and the reference."""
    torch.manual_seed(0)
    h, w = 32, 48
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pattern = (((yy // 8) + (xx // 8)) % 2).float()  # 8x8 checkerboard
    image = pattern.expand(3, h, w) * 0.6 + 0.2
    clips = image.expand(4, 5, 3, h, w).clone()  # B=4 clips of 4 frames + reference, in [0, 1]
    augment = ClipPhotometric(blur_p=1.0, grayscale_p=0.5, mean=(0, 0, 0), std=(1, 1, 1))
    out = augment(clips)
    assert out.shape == clips.shape and not torch.allclose(out, clips)
    centres = (yy % 8 == 4) & (xx % 8 == 4)
    for b in range(4):
        for n in range(5):
            gray = out[b, n].mean(0)
            bright = gray > gray.median()
            assert torch.equal(bright[centres], pattern.bool()[centres])
        assert all(torch.allclose(out[b, 0], out[b, n], atol=1e-6) for n in range(5))  # one draw per clip


def test_unsupervised_weight_ramps_up_to_one():
    assert sigmoid_rampup(0, 100) == pytest.approx(0.006737947)
    assert sigmoid_rampup(50, 100) < sigmoid_rampup(90, 100) < sigmoid_rampup(100, 100) == 1.0
    assert sigmoid_rampup(10, 0) == 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(confidence_threshold=1.5), "confidence_threshold"), (dict(ema_decay=1.0), "ema_decay"),
    (dict(eval_network="both"), "eval_network"),
])
def test_bad_mean_teacher_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_method(**kwargs)


class RecordStudent(pl.Callback):
    def __init__(self):
        self.states = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.states.append(snapshot(pl_module.model))


def test_lightning_training_keeps_the_teacher_equal_to_the_ema_of_the_student(train_cfg_factory):
    cfg = train_cfg_factory("method=mean_teacher", "model=per_frame", "data.steps_per_epoch=4",
                            "callbacks=none")
    pl.seed_everything(0)
    datamodule = instantiate(cfg.data)
    method = instantiate(cfg.method, model=instantiate(cfg.model))
    datamodule.use_unlabelled = method.uses_unlabelled
    expected = snapshot(method.teacher)
    recorder = RecordStudent()
    trainer = instantiate(cfg.trainer, callbacks=[recorder], logger=False, limit_val_batches=0)
    trainer.fit(method, datamodule=datamodule)
    assert len(recorder.states) == 4
    for step, state in enumerate(recorder.states):
        d = min(1 - 1 / (step + 1), cfg.method.ema_decay)
        for key, value in state.items():
            expected[key] = d * expected[key] + (1 - d) * value if value.dtype.is_floating_point else value
    teacher = method.teacher.state_dict()
    for key, value in expected.items():
        assert torch.allclose(teacher[key], value, atol=1e-5), key


def test_mean_teacher_fast_dev_run_logs_pseudo_label_quality(train_cfg_factory):
    cfg = train_cfg_factory("method=mean_teacher", "trainer.fast_dev_run=true", "method.confidence_threshold=0.0")
    result, objects = train_entry.run(cfg)
    logged = objects["trainer"].logged_metrics
    assert logged["train/pseudo_coverage"] == 1.0 and 0.0 <= logged["train/pseudo_accuracy"] <= 1.0
    assert "val/student/mIoU" in logged and "val/mIoU" in logged


def test_the_pseudo_label_tally_counts_coverage_and_accuracy_per_class_of_the_hidden_truth():
    from ssltm.metrics.pseudo_labels import PseudoLabelTally

    ignore = IGNORE_INDEX
    hidden = torch.tensor([[[0, 0, 0, 0, 1, 1, 2, ignore]]])
    targets = torch.tensor([[[0, 0, ignore, 1, 1, ignore, ignore, 0]]])
    tally = PseudoLabelTally(3)
    tally.add(targets, hidden)
    tally.add(targets, hidden)  # sums over steps: the rates stay
    rates = tally.rates(["background", "disc", "square"])
    # background: 4 pixels, 3 labelled, 2 right; disc: 2, 1, 1; square: 1, 0 (no accuracy)
    assert rates["train/pseudo_coverage/background"] == 0.75
    assert rates["train/pseudo_accuracy/background"] == 2 / 3
    assert rates["train/pseudo_coverage/disc"] == 0.5 and rates["train/pseudo_accuracy/disc"] == 1.0
    assert rates["train/pseudo_coverage/square"] == 0.0 and "train/pseudo_accuracy/square" not in rates
    assert rates["train/pseudo_coverage/objects"] == 1 / 3 and rates["train/pseudo_accuracy/objects"] == 1.0
    assert tally.counts.tolist() == [[8, 4, 2], [6, 2, 0], [4, 2, 0]]
    tally.reset()
    assert tally.rates(["background", "disc", "square"]) == {}
    assert "train/pseudo_coverage/objects" not in PseudoLabelTally(2).rates(["sky", "road"], torch.ones(3, 2))


def test_fixmatch_logs_pseudo_label_coverage_and_accuracy_per_class_every_epoch(train_cfg_factory):
    cfg = train_cfg_factory("method=fixmatch", "data.steps_per_epoch=2", "method.confidence_threshold=0.0",
                            "callbacks=none")
    datamodule = instantiate(cfg.data)
    method = instantiate(cfg.method, model=instantiate(cfg.model))
    datamodule.use_unlabelled = method.uses_unlabelled
    trainer = instantiate(cfg.trainer, logger=False, limit_val_batches=0, max_epochs=1)
    trainer.fit(method, datamodule=datamodule)
    logged = trainer.logged_metrics
    names = datamodule.info.classes
    assert "background" in names
    seen = [name for name in [*names, "objects"] if f"train/pseudo_coverage/{name}" in logged]
    assert "background" in seen and "objects" in seen
    for name in seen:  # threshold 0: every pixel of a class present is labelled
        assert logged[f"train/pseudo_coverage/{name}"] == 1.0
        assert 0.0 <= logged[f"train/pseudo_accuracy/{name}"] <= 1.0
    assert method.pseudo_tally.counts.sum() == 0  # reset after logging


def test_fixmatch_labels_the_weak_view_with_the_student_itself_and_mixes_the_strong_one():
    """FixMatch: the student (no teacher, no gradient) predicts the weak clip; the strong view is
    the photometric clip CutMix-ed with its partner, and the student's memory labels on it are the
    weak argmax mixed by the same box."""
    from ssltm.methods.weak_to_strong import FixMatchMethod

    torch.manual_seed(0)
    model = PerFrameSegmenter(TimmBackbone("test_resnet"), num_classes=3, channels=16)
    method = FixMatchMethod(model, functools.partial(torch.optim.SGD, lr=0.1), None, cutmix_p=1.0,
                            confidence_threshold=0.0)
    assert not hasattr(method, "teacher")
    method.train()
    frames, reference = torch.rand(2, 1, 3, 32, 32), torch.rand(2, 3, 32, 32)
    batch = {
        "labelled": {"frames": torch.rand(2, 1, 3, 32, 32), "reference": torch.rand(2, 3, 32, 32),
                     "label": torch.randint(0, 3, (2, 32, 32))},
        "unlabelled": {"frames": frames.clone(), "reference": reference.clone()},
    }
    seen = []
    forward = method.model.forward

    def record(frames, reference, memory_labels=None):
        outputs = forward(frames, reference, memory_labels)
        seen.append((frames.clone(), memory_labels, outputs.logits.detach(), torch.is_grad_enabled()))
        return outputs

    method.model.forward = record
    method.training_loss(batch, 0)
    (_labelled, (w_frames, _, w_logits, w_grad), (s_frames, s_targets, _, s_grad)) = seen
    assert torch.equal(w_frames, frames) and not w_grad and s_grad  # weak view without gradient
    weak = w_logits.argmax(1)
    partner = weak[[1, 0]]
    boxed = s_targets != weak  # where the partner's labels show through: a box of one rectangle
    assert torch.equal(s_targets[boxed], partner[boxed])
    assert bool(boxed.any())  # cutmix_p=1: every clip got a box (this seed's boxes differ in labels)


def test_unimatch_drops_channels_of_the_head_input_in_its_perturbed_stream_only():
    from ssltm.methods.weak_to_strong import UniMatchMethod

    torch.manual_seed(0)
    model = PerFrameSegmenter(TimmBackbone("test_resnet"), num_classes=3, channels=16)
    method = UniMatchMethod(model, functools.partial(torch.optim.SGD, lr=0.1), None, cutmix_p=0.5,
                            confidence_threshold=0.0, fp_dropout=0.5)
    method.train()
    head_inputs = []
    head_forward = model.head.forward

    def recording(x, *args, **kwargs):  # called after the pre-hooks: sees what the head reads
        head_inputs.append(x.detach())
        return head_forward(x, *args, **kwargs)

    model.head.forward = recording
    frames, reference = torch.rand(2, 1, 3, 32, 32), torch.rand(2, 3, 32, 32)
    method.perturbed_logits(frames, reference)
    dropped = head_inputs[-1].abs().sum((2, 3)) == 0  # B C: whole channels zeroed
    assert 0 < int(dropped.sum()) < dropped.numel()
    batch = {
        "labelled": {"frames": torch.rand(2, 1, 3, 32, 32), "reference": torch.rand(2, 3, 32, 32),
                     "label": torch.randint(0, 3, (2, 32, 32))},
        "unlabelled": {"frames": frames, "reference": reference},
    }
    head_inputs.clear()
    loss = method.training_loss(batch, 0)
    # labelled, weak (no grad), strong 1, strong 2, perturbed: only the last has dropped channels
    assert len(head_inputs) == 5 and torch.isfinite(loss)
    zeroed = [int((x.abs().sum((2, 3)) == 0).sum()) for x in head_inputs]
    # (a ReLU may leave a stray channel at zero; dropout at 0.5 takes about half of the 2 x C)
    assert max(zeroed[:4]) <= 2 and zeroed[4] >= head_inputs[4].shape[1] // 2


MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("model_name", MODELS)
def test_weak_to_strong_methods_train_every_model(model_name, train_cfg_factory):
    """UniMatch (which includes FixMatch's step) with the perturbation at the encoder for one half
    of the models and at the head for the other: a training and a validation step on every model."""
    fp_at = ("head", "encoder")[MODELS.index(model_name) % 2]
    overrides = [f"model={model_name}", "method=unimatch", f"method.fp_at={fp_at}", "trainer.fast_dev_run=true"]
    if model_name in ("etc", "netwarp"):  # no optical flow network (identity warping): faster
        overrides.append("model.flow.source=zero")
    if model_name == "segmenter":  # its heads must divide the small test width (32)
        overrides.append("model.num_heads=4")
    result, _ = train_entry.run(train_cfg_factory(*overrides))
    assert 0.0 <= result["mIoU"] <= 1.0


def test_unimatch_v2_masks_its_two_strong_views_with_complementary_channels(monkeypatch):
    """The head of the student reads x * m in the first strong view and x' * (2 - m) in the second,
    m drawn once per step: 0 or 2 per channel, all ones for half the clips; the labelled clips
    and the teacher are not masked."""
    from ssltm.methods import unimatch_v2

    drawn = []

    def recording_mask(shape, device):
        drawn.append(unimatch_v2.complementary_mask.__wrapped__(shape, device))
        return drawn[-1]

    recording_mask.__wrapped__ = unimatch_v2.complementary_mask
    monkeypatch.setattr(unimatch_v2, "complementary_mask", recording_mask)
    torch.manual_seed(0)
    model = PerFrameSegmenter(TimmBackbone("test_resnet"), num_classes=3, channels=16)
    method = unimatch_v2.UniMatchV2Method(model, functools.partial(torch.optim.SGD, lr=0.1), None, cutmix_p=0.5,
                                          confidence_threshold=0.0)
    method.train()
    clean, masked = [], []
    model.head.register_forward_pre_hook(lambda module, args: clean.append(args[0].detach()))  # before the mask
    head_forward = model.head.forward

    def recording(x, *args, **kwargs):  # after every pre-hook: what the head reads
        masked.append(x.detach())
        return head_forward(x, *args, **kwargs)

    model.head.forward = recording
    batch = {
        "labelled": {"frames": torch.rand(4, 1, 3, 32, 32), "reference": torch.rand(4, 3, 32, 32),
                     "label": torch.randint(0, 3, (4, 32, 32))},
        "unlabelled": {"frames": torch.rand(4, 1, 3, 32, 32), "reference": torch.rand(4, 3, 32, 32)},
    }
    loss = method.training_loss(batch, 0)
    assert torch.isfinite(loss) and len(drawn) == 1 and len(masked) == 3  # labelled, strong 1, strong 2
    mask = drawn[0]  # B C
    assert mask.shape == (4, 16) and set(mask.unique().tolist()) <= {0.0, 1.0, 2.0}
    assert int((mask == 1).all(1).sum()) == 2 and bool((mask[~(mask == 1).all(1)] != 1).all())
    torch.testing.assert_close(masked[0], clean[0])
    torch.testing.assert_close(masked[1], clean[1] * mask[:, :, None, None])
    torch.testing.assert_close(masked[2], clean[2] * (2 - mask)[:, :, None, None])


@pytest.mark.parametrize(("model_name", "fp_at"), [("ssltm", "encoder"), ("per_frame", "head")])
def test_unimatch_v2_trains_and_evaluates(model_name, fp_at, train_cfg_factory):
    result, objects = train_entry.run(train_cfg_factory(f"model={model_name}", "method=unimatch_v2",
                                                        f"method.fp_at={fp_at}", "trainer.fast_dev_run=true"))
    assert 0.0 <= result["mIoU"] <= 1.0 and hasattr(objects["method"], "teacher")
