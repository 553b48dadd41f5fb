"""The SSLTM model: every switch combination trains, the switches change what it computes."""

from __future__ import annotations

import itertools

import pytest
import torch

from ssltm.models.backbones import TimmBackbone
from ssltm.models.ssltm import SSLTM

SWITCHES = [
    (stt, context, gcc)
    for stt, context, gcc in itertools.product([True, False], ["none", "qfce", "rfce"], ["off", "mse", "ema"])
]


def make(stt=True, context="rfce", gcc="mse", **kwargs) -> SSLTM:
    torch.manual_seed(0)
    return SSLTM(
        TimmBackbone("test_resnet"), num_classes=5, channels=32,
        stt={"enabled": stt, "num_heads": 4, "window": [2, 4, 4]}, context=context,
        gcc={"enabled": gcc != "off", "update": gcc if gcc != "off" else "mse", "k": 2}, **kwargs,
    )


def inputs(b=2, t=3, h=40, w=56):
    torch.manual_seed(1)
    return torch.randn(b, t, 3, h, w), torch.randn(b, 3, h, w), torch.randint(0, 5, (b, h, w))


@pytest.mark.parametrize(("stt", "context", "gcc"), SWITCHES, ids=[f"stt={s}-{c}-gcc={g}" for s, c, g in SWITCHES])
def test_every_switch_combination_runs_forward_and_backward(stt, context, gcc):
    model = make(stt, context, gcc).train()
    frames, reference, labels = inputs()
    out = model(frames, reference, memory_labels=labels)
    assert out.logits.shape == (2, 5, 40, 56) and out.aux_logits.shape == (2, 5, 40, 56)
    assert torch.isfinite(out.logits).all()
    assert set(out.losses) == ({"gcc"} if gcc != "off" else set())
    loss = out.logits.logsumexp(1).mean() + out.aux_logits.mean() + sum(out.losses.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_square_inputs_and_a_single_frame_clip_work():
    model = make().eval()
    frames, reference, _ = inputs(b=1, t=1, h=64, w=64)
    assert model(frames, reference).logits.shape == (1, 5, 64, 64)


def test_rfce_reads_the_reference_frame_and_qfce_does_not():
    frames, reference, _ = inputs()
    other = torch.randn_like(reference)
    for context, depends in (("rfce", True), ("qfce", False), ("none", False)):
        model = make(context=context).eval()
        with torch.no_grad():
            a, b = model(frames, reference).logits, model(frames, other).logits
        assert (not torch.allclose(a, b)) == depends, context


def test_stt_makes_the_query_depend_on_the_frame_before_it():
    frames, reference, _ = inputs()  # T = 3, window t = 2: the query shares its window with frame 1
    changed = frames.clone()
    changed[:, 1] = torch.randn_like(changed[:, 1])
    for stt, depends in ((True, True), (False, False)):
        model = make(stt=stt, context="none").eval()
        with torch.no_grad():
            a, b = model(frames, reference).logits, model(changed, reference).logits
        assert (not torch.allclose(a, b)) == depends


def test_memory_is_updated_only_in_training_with_labels():
    model = make(gcc="ema")
    frames, reference, labels = inputs()
    before = model.gcc.prototypes.clone()
    model.eval()
    model(frames, reference, memory_labels=labels)
    assert torch.equal(model.gcc.prototypes, before)
    model.train()
    model(frames, reference)
    assert torch.equal(model.gcc.prototypes, before)
    model(frames, reference, memory_labels=labels)
    assert not torch.equal(model.gcc.prototypes, before)


def test_whole_model_state_round_trips_through_a_checkpoint(tmp_path):
    model = make(gcc="ema").train()
    frames, reference, labels = inputs()
    model(frames, reference, memory_labels=labels)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = make(gcc="ema")
    fresh.load_state_dict(torch.load(tmp_path / "m.pt"))
    assert torch.equal(fresh.gcc.prototypes, model.gcc.prototypes)
    model.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(frames, reference).logits, fresh(frames, reference).logits)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(context="ocr"), "model.context"),
    (dict(stt={"depht": 2}), r"model.stt: unknown option\(s\) \['depht'\]"),
    (dict(stt={"window": [4, 8]}), "model.stt.window"),
    (dict(gcc={"clusters": 3}), "model.gcc: unknown option"),
])
def test_bad_model_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SSLTM(TimmBackbone("test_resnet"), num_classes=5, channels=32, **kwargs)
