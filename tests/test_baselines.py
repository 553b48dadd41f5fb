"""The comparison baselines: forward shapes on a CNN and a Swin backbone, flow warping, what each
video baseline is at initialisation, the temporal consistency loss, RAFT weights from a local
file, and a fast_dev_run of every baseline with the supervised and the Mean Teacher method."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, compose_config
from hydra.utils import instantiate
from torchvision.models.optical_flow import raft_small

import train as train_entry
from ssltm.errors import BackboneCheckpointError
from ssltm.models.baselines.etc import temporal_consistency_loss
from ssltm.models.baselines.flow import FlowEstimator, flow_warp, resize_flow
from ssltm.models.heads import upsample_to

BASELINES = ["deeplabv3plus", "pspnet", "upernet", "ocrnet", "segmenter", "netwarp", "etc", "tcb"]
VIDEO = {"netwarp", "etc", "tcb"}


def test_every_baseline_has_a_config():
    assert set(BASELINES) <= {p.stem for p in (CONF / "model").glob("*.yaml")}


def build(model: str, backbone: str, tmp_path, *extra: str):
    cfg = compose_config("train", [f"model={model}", f"backbone={backbone}", "data.train_transform.crop_size=[64,96]",
                                   *extra], tmp_path)
    torch.manual_seed(0)
    return instantiate(cfg.model)


@pytest.mark.parametrize("backbone", ["resnet18", "swin_t"])
@pytest.mark.parametrize("model", BASELINES)
def test_forward_shapes_in_training_and_evaluation(model, backbone, tmp_path):
    network = build(model, backbone, tmp_path)
    frames, reference = torch.randn(2, 3, 3, 64, 96), torch.randn(2, 3, 64, 96)
    out = network.train()(frames, reference)
    assert out.logits.shape == (2, 7, 64, 96) and out.aux_logits.shape == (2, 7, 64, 96)
    assert set(out.losses) == ({"temporal"} if model == "etc" else set())
    total = out.logits.mean() + out.aux_logits.mean() + sum(out.losses.values(), torch.zeros(()))
    total.backward()
    assert network.head.classifier.weight.grad is not None if hasattr(network, "head") else True
    with torch.no_grad():
        out = network.eval()(frames, reference)
    assert out.logits.shape == (2, 7, 64, 96) and not out.losses
    assert torch.isfinite(out.logits).all()


def test_flow_warp_with_zero_flow_is_the_identity():
    x = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(flow_warp(x, torch.zeros(2, 2, 7, 9)), x, atol=1e-6, rtol=0)


def test_flow_warp_with_a_known_shift_moves_features_by_that_shift():
    x = torch.randn(1, 3, 10, 12)
    flow = torch.zeros(1, 2, 10, 12)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # each pixel reads 2 to the right and 1 up
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[..., 1:, :-2], x[..., :-1, 2:], atol=1e-5, rtol=0)
    assert out[..., 0, :].abs().max() < 1e-5 and out[..., :, -2:].abs().max() < 1e-5  # outside: zeros
    half = flow_warp(x, torch.full((1, 2, 10, 12), 0.5) * torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    torch.testing.assert_close(half[..., :-1], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-5, rtol=0)  # bilinear


def test_attention_width_not_divisible_by_heads_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match=r"model.channels \(32\) must be divisible by model.num_heads \(6\)"):
        build("segmenter", "resnet18", tmp_path, "model.channels=32")


def test_resized_flow_scales_its_vectors():
    flow = torch.ones(1, 2, 8, 16)
    small = resize_flow(flow, (4, 4))
    assert small[:, 0].unique().tolist() == [0.25] and small[:, 1].unique().tolist() == [0.5]


def test_flow_estimator_sources_and_local_raft_weights(tmp_path):
    a, b = torch.randn(1, 3, 40, 56), torch.randn(1, 3, 40, 56)
    assert FlowEstimator("zero")(a, b).abs().max() == 0
    torch.manual_seed(1)
    weights = raft_small(weights=None).state_dict()
    torch.save(weights, tmp_path / "raft.pth")
    estimator = FlowEstimator("raft_small", checkpoint=str(tmp_path / "raft.pth"), num_updates=2)
    for key, value in weights.items():
        assert torch.equal(estimator.raft.state_dict()[key], value), key
    assert not any(p.requires_grad for p in estimator.raft.parameters())  # frozen
    flow = estimator.eval()(a, b)
    assert flow.shape == (1, 2, 40, 56) and torch.isfinite(flow).all()  # small frames are enlarged for RAFT
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(BackboneCheckpointError, match="does not fit raft_small"):
        FlowEstimator("raft_small", checkpoint=str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="model.flow.source"):
        FlowEstimator("farneback")


def test_temporal_consistency_loss():
    probs = torch.rand(2, 4, 6, 8).softmax(1)
    image = torch.randn(2, 3, 6, 8)
    zero = torch.zeros(2, 2, 6, 8)
    assert temporal_consistency_loss(probs, probs, zero, image, image) < 1e-10
    other = torch.rand(2, 4, 6, 8).softmax(1)
    assert temporal_consistency_loss(probs, other, zero, image, image) > 0
    # where the previous image warps badly (occlusion), the loss counts less
    assert temporal_consistency_loss(probs, other, zero, image, image + 3) < temporal_consistency_loss(
        probs, other, zero, image, image)


@pytest.mark.parametrize("model", ["netwarp", "tcb"])
def test_video_baselines_start_as_their_per_frame_network(model, tmp_path):
    """NetWarp's warped-feature weight and TCB's blending weight start at 0: at initialisation
    both are the per-frame network applied to the query frame."""
    network = build(model, "resnet18", tmp_path).eval()
    frames = torch.randn(2, 3, 3, 64, 96)
    with torch.no_grad():
        out = network(frames, frames[:, 0]).logits
        _, logits, _ = network.segment(frames[:, -1])
    torch.testing.assert_close(out, upsample_to(logits, (64, 96)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["supervised", "mean_teacher"])
@pytest.mark.parametrize("model", BASELINES)
def test_every_baseline_trains_and_evaluates(model, method, train_cfg_factory):
    # one validation batch = one whole 20-frame video, so that mVC_8 has windows to score
    heads = ["model.num_heads=4"] if model == "segmenter" else []  # SMALL's 32 channels
    cfg = train_cfg_factory(f"model={model}", f"method={method}", "trainer.fast_dev_run=true",
                            "data.eval_batch_size=20", *heads)
    result, objects = train_entry.run(cfg)
    assert objects["trainer"].global_step == 1
    assert result["windows8"] > 0 and 0.0 <= result["mIoU"] <= 1.0 and 0.0 <= result["mVC8"] <= 1.0
