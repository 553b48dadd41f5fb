"""Backbones: NCHW feature pyramids from CNNs and Swin, and local checkpoint loading."""

from __future__ import annotations

import pytest
import timm
import torch

from ssltm.errors import BackboneCheckpointError
from ssltm.models.backbones import TimmBackbone


def test_cnn_backbone_returns_nchw_levels_at_their_strides():
    backbone = TimmBackbone("test_resnet")
    features = backbone(torch.randn(2, 3, 48, 64))
    assert [f.shape[1] for f in features] == backbone.channels
    assert [(f.shape[2], f.shape[3]) for f in features] == [(-(-48 // r), -(-64 // r)) for r in backbone.reductions]  # ceil


def test_swin_backbone_is_converted_from_channels_last_and_takes_the_image_size():
    backbone = TimmBackbone("swin_tiny_patch4_window7_224", out_indices=(0, 1, 2, 3), img_size=(64, 96))
    assert backbone.nhwc
    features = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, 64 // r, 96 // r) for c, r in zip(backbone.channels, backbone.reductions)
    ]
    # a whole frame larger than the training crop (full-resolution evaluation), odd sizes padded
    features = backbone(torch.randn(1, 3, 72, 104))
    assert [tuple(f.shape[-2:]) for f in features] == [(18, 26), (9, 13), (5, 7), (3, 4)]


def test_local_checkpoint_loads_every_weight(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / "test_resnet.pth"
    torch.save({"state_dict": source.state_dict()}, path)  # wrapped, as many trainers save
    backbone = TimmBackbone("test_resnet", checkpoint=str(path))
    loaded = backbone.body.state_dict()
    expected = source.state_dict()
    assert loaded and all(torch.equal(loaded[k], expected[k]) for k in loaded if k in expected)
    assert sum(k in expected for k in loaded) == len(loaded)
    fresh = TimmBackbone("test_resnet").body.state_dict()
    assert not all(torch.equal(fresh[k], loaded[k]) for k in loaded if k.endswith("weight"))


def test_checkpoint_without_the_classifier_loads(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False)
    body = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "body.pth"
    torch.save(body, path)
    backbone = TimmBackbone("test_resnet", checkpoint=str(path))
    assert torch.equal(backbone.body.state_dict()["conv1.0.weight"], body["conv1.0.weight"])


def test_mismatched_checkpoint_reports_missing_and_unexpected_keys(tmp_path):
    state = timm.create_model("test_resnet", pretrained=False).state_dict()
    state.pop("conv1.0.weight")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(BackboneCheckpointError) as err:
        TimmBackbone("test_resnet", checkpoint=str(path))
    message = str(err.value)
    assert str(path) in message and "conv1.0.weight" in message and "extra.weight" in message


def test_missing_or_unreadable_checkpoint_is_clear(tmp_path):
    with pytest.raises(BackboneCheckpointError, match="no file at"):
        TimmBackbone("test_resnet", checkpoint=str(tmp_path / "none.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneCheckpointError, match="cannot read"):
        TimmBackbone("test_resnet", checkpoint=str(junk))


def test_pretrained_weights_come_from_the_hub_faked_here_and_a_failed_download_is_one_line(monkeypatch):
    """backbone.pretrained=true goes through timm's hub loader (replaced by a fake: tests never
    use the network); without network access the error says how to give a file instead."""
    import timm.models._builder as builder

    fake = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
            for k, v in timm.create_model("test_resnet", pretrained=False).state_dict().items()}
    asked = []

    def hub(hf_hub_id, *args, **kwargs):
        asked.append(hf_hub_id)
        return dict(fake)

    monkeypatch.setattr(builder, "load_state_dict_from_hf", hub)
    backbone = TimmBackbone("test_resnet", pretrained=True)
    assert asked and asked[0].startswith("timm/test_resnet")
    assert torch.all(backbone.body.state_dict()["conv1.0.weight"] == 0.5)

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(builder, "load_state_dict_from_hf", offline)
    with pytest.raises(BackboneCheckpointError, match=r"could not fetch the weights of test_resnet from the hub "
                                                      r"\(We couldn't connect.*backbone.checkpoint=/path/to/test_resnet.pth"):
        TimmBackbone("test_resnet", pretrained=True)
