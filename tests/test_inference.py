"""Whole-frame and sliding-window evaluation passes (src/ssltm/methods/inference.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssltm.inference.passes import Inference, window_starts
from ssltm.models.segmenter import SegmenterOutput


class PixelwiseNet(nn.Module):
    """Logits from each pixel of the query frame alone, so a sliding window must equal one pass;
    it records the sizes it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, frames, reference):
        assert frames.shape[-2:] == reference.shape[-2:]
        self.sizes.append(tuple(frames.shape[-2:]))
        logits = self.conv(frames[:, -1]) + reference.mean()
        return SegmenterOutput(logits, logits)


def test_windows_cover_the_frame_and_end_flush():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(4, 4, 3) == [0]


@pytest.mark.parametrize("size", [(20, 30), (9, 13)])  # larger and smaller than the window
def test_sliding_window_equals_one_pass_for_a_pixelwise_network(size):
    torch.manual_seed(0)
    net = PixelwiseNet()
    frames, reference = torch.randn(2, 3, 3, *size), torch.zeros(2, 3, *size)
    whole = Inference("whole")(net, frames, reference)
    net.sizes.clear()
    slide = Inference("slide", crop_size=(12, 16))(net, frames, reference)
    assert slide.shape == whole.shape == (2, 5, *size)
    assert torch.allclose(slide, whole, atol=1e-6)
    assert set(net.sizes) == {(12, 16)}  # every call at the window size
    assert len(net.sizes) == len(window_starts(max(size[0], 12), 12, 8)) * len(window_starts(max(size[1], 16), 16, 10))


def test_bad_inference_options_are_clear():
    with pytest.raises(ValueError, match="must be one of whole, slide"):
        Inference("tiles")
    with pytest.raises(ValueError, match="needs inference.crop_size"):
        Inference("slide")


@pytest.mark.parametrize("variant", [[], ["model.stt.enabled=false"], ["model.context=qfce"], ["model.context=none"]],
                         ids=["ssltm", "no_stt", "qfce", "no_context"])
def test_evaluation_batches_encode_each_frame_once_with_the_same_logits(variant, tmp_path):
    """An evaluation batch of consecutive queries: encoding each distinct frame once and reusing it
    gives the logits of running every clip on its own (to 1e-5), with fewer backbone passes."""
    from conftest import SMALL, compose_config
    from hydra.utils import instantiate

    from ssltm.inference.passes import Inference

    cfg = compose_config("train", [*SMALL, "data.eval_batch_size=6", "data.clip.eval_distance=3", *variant], tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    torch.manual_seed(0)
    network = instantiate(cfg.model).eval()
    encoded = []
    network.backbone.register_forward_hook(lambda module, args, out: encoded.append(args[0].shape[0]))
    meta = batch["meta"]
    with torch.no_grad():
        expected = Inference()(network, batch["frames"], batch["reference"])
        passes_each_clip = encoded.pop()
        got = Inference()(network, batch["frames"], batch["reference"], meta["frame_indices"], meta["reference_index"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    all_clip, with_reference = network.frames_needed()
    ids = (meta["frame_indices"] if all_clip else meta["frame_indices"][:, -1]).flatten()
    if with_reference:
        ids = torch.cat([ids, meta["reference_index"]])
    assert encoded == [ids.unique().numel()] and encoded[0] < passes_each_clip
