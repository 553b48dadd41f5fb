"""The benchmark's reference implementations, the speed switches and the GPU configs.
(Speed itself is measured by scripts/bench.py, never asserted here.)"""

from __future__ import annotations

import json
from argparse import Namespace

import pytest
import torch
from conftest import SMALL, compose_config
from measure import report, stt_attention, timing, train_step

import train as train_entry


@pytest.mark.parametrize("size", [(4, 12, 16), (3, 8, 8), (4, 9, 11)], ids=["padded", "exact", "odd"])
def test_naive_stt_block_computes_what_ours_does(size):
    """The benchmark's naive block (attention matrix and mask written out) is the same function
    as our SDPA block, padding included, so the comparison is of two implementations of one thing."""
    torch.manual_seed(0)
    ours = stt_attention.STTBlock(32, num_heads=4, window=(4, 8, 8)).eval()
    naive = stt_attention.NaiveSTTBlock(32, num_heads=4, window=(4, 8, 8)).eval()
    naive.load_state_dict(ours.state_dict())
    x = torch.randn(2, *size, 32)
    with torch.no_grad():
        torch.testing.assert_close(naive(x), ours(x), atol=1e-5, rtol=1e-5)


def test_shifted_window_mask_separates_the_rolled_regions():
    mask = stt_attention.shifted_window_mask((4, 16, 16), (4, 8, 8), (0, 4, 4), "cpu")
    assert mask.shape == (4, 256, 256)
    assert (mask[0] == 0).all()  # the first window holds one region only
    assert (mask[-1] == -100).any() and (torch.diagonal(mask[-1]) == 0).all()  # the corner window: 4 regions


def test_bench_report_renders_the_json_results(tmp_path):
    machine = {"date": "d", "device": "cpu", "cpu": "x", "cpu_threads": 2, "torch": torch.__version__}
    step = {"median_s": 2.0, "labelled_clips_per_s": 4.0, "clips_per_s": 8.0, "flops_per_step": 4e9,
            "flop_per_s": 2e9, "peak_memory_bytes": 2**30, "overhead_share": 0.05, "overhead_parts_share": 0.04,
            "parts_s": {"EMA update": 0.01}}
    (tmp_path / "train_step.json").write_text(json.dumps(
        {"machine": machine, "command": "python scripts/bench.py train_step", "results": {"resnet18/mean_teacher": step}}))
    text = report.report(tmp_path)
    assert "| resnet18/mean_teacher | 2.000 | 4.00 | 8.00 | 4.0 | 2.0 | 1024 | 5.0% (4.0%) |" in text
    assert "python scripts/bench.py train_step" in text


def test_gpu_configs_switch_on_the_gpu_paths(tmp_path):
    cfg = compose_config("train", ["trainer=gpu"], tmp_path)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.performance.channels_last is True
    assert cfg.optimizer.fused is True
    cpu = compose_config("train", [], tmp_path)
    assert cpu.performance.channels_last is False and cpu.optimizer.fused is False
    ddp = compose_config("train", ["trainer=ddp", "trainer.accelerator=gpu"], tmp_path)
    assert ddp.trainer.sync_batchnorm is True and ddp.trainer.strategy == "ddp"


def test_channels_last_trains_and_keeps_checkpoint_keys(train_cfg_factory, tmp_path):
    _, objects = train_entry.run(train_cfg_factory("performance.channels_last=true", "trainer.fast_dev_run=true"))
    model = objects["method"].model
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_bad_matmul_precision_is_a_clear_error(train_cfg_factory):
    from ssltm.errors import ConfigError

    with pytest.raises(ConfigError, match="performance.matmul_precision='fastest' must be one of"):
        train_entry.run(train_cfg_factory("performance.matmul_precision=fastest"))


@pytest.mark.slow
def test_compiled_backbone_trains_and_keeps_checkpoint_keys(train_cfg_factory, tmp_path):
    """torch.compile (inductor, needs a C++ compiler) of the backbone, in place: the state dict keys
    are the plain model's, so checkpoints load without it."""
    _, objects = train_entry.run(train_cfg_factory("performance.compile=true", "trainer.max_epochs=1"))
    keys = objects["method"].model.state_dict().keys()
    assert not any("_orig_mod" in k for k in keys)


def test_peak_memory_is_the_largest_rise_of_the_running_total():
    # frees the old gradients (-4), then activations and new gradients rise by 10 before falling
    assert timing.largest_rise([-4, 3, 5, 2, -6, 1]) == 10
    assert timing.largest_rise([]) == 0


@pytest.mark.parametrize("groups", [1, 16], ids=["dense", "depthwise"])
def test_flop_counter_counts_a_convolution_backward_as_twice_its_forward(groups):
    """scripts/bench.py's FLOP counter: backward = input gradient + weight gradient = 2 x forward,
    depthwise convolutions included (torch's own formula counts those as dense)."""
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, groups=groups)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    with train_step.flop_counter() as forward:
        y = conv(x)
    with train_step.flop_counter() as backward:
        y.sum().backward()
    assert forward.get_total_flops() == 2 * 2 * 16 * 16 // groups * 9 * 64
    assert backward.get_total_flops() == 2 * forward.get_total_flops()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bench_train_step_runs_every_method_it_is_given(tmp_path, precision):
    """`bench.py train_step --methods ... --precision ...` builds and times a real step of each
    method (the Mean Teacher breakdown included), so a change of a method's API breaks here and
    not on a lent GPU."""
    args = Namespace(backbones="tiny", methods="supervised,mean_teacher,fixmatch,unimatch", precision=precision,
                     repeats=1, overrides=[o for o in SMALL if not o.startswith("backbone=")], out=str(tmp_path))
    results = train_step.bench_train_step(args)["results"]
    assert list(results) == ["tiny/supervised", "tiny/mean_teacher", "tiny/fixmatch", "tiny/unimatch"]
    assert all(r["median_s"] > 0 and r["flops_per_step"] > 0 and r["precision"] == precision for r in results.values())
    assert results["tiny/supervised"]["clips_per_step"] == 2 and results["tiny/unimatch"]["clips_per_step"] == 4
    assert results["tiny/unimatch"]["flops_per_step"] > results["tiny/fixmatch"]["flops_per_step"]  # two strong views + FP
    assert ("parts_s" in results["tiny/mean_teacher"]) == (precision == "fp32")
