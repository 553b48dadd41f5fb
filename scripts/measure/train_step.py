"""`bench.py train_step` and `roofline`: a training step's speed, FLOPs and memory per backbone and method,
and the share of the machine's matmul FLOP/s it achieves."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import DEVICE, ROOT, compare_times, mb, peak_memory, show
from ssltm.runs.config import compose_config
from ssltm.runs.performance import apply_performance

# --- train_step ----------------------------------------------------------------------------------
BACKBONES = ("resnet18", "resnet101", "swin_s")
METHODS = ("supervised", "mean_teacher")  # --methods adds fixmatch, unimatch (any method=NAME)
PRECISIONS = ("fp32", "bf16")


def _built(backbone: str, method: str, overrides: list[str]):
    cfg = compose_config("train", [f"backbone={backbone}", f"method={method}", "data.num_workers=0", *overrides],
                         ROOT / "outputs" / "bench")
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.use_unlabelled = method != "supervised"
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    batch = batch[0] if isinstance(batch, tuple) else batch
    model = apply_performance(instantiate(cfg.model), cfg.get("performance"))  # channels_last, compile, TF32
    lightning = instantiate(cfg.method, model=model).to(DEVICE)
    batch = _to(batch, DEVICE)
    optimizer = lightning.optimizer_factory(params=lightning.trainable_parameters())
    return cfg, lightning, optimizer, batch


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def autocast(precision: str):
    """bf16: the forward under torch.autocast, as trainer.precision=bf16-mixed runs it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16)


def forward_backward(lightning, batch, precision: str) -> None:
    """The training loss (under autocast for bf16) and its backward."""
    with autocast(precision):
        loss = lightning.training_loss(batch, 0)
    loss.backward()


def train_step(lightning, optimizer, batch, precision: str = "fp32") -> Callable[[], None]:
    """One training step as Lightning runs it: loss, backward, optimiser step, teacher update."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(lightning, batch, precision)
        optimizer.step()
        if hasattr(lightning, "update_teacher"):
            lightning.update_teacher()

    return step


def mean_teacher_parts(lightning, optimizer, batch) -> dict[str, Callable[[], object]]:
    """The parts of a Mean Teacher step, each runnable alone on the same batch."""
    from ssltm.methods.weak_to_strong import pseudo_labels

    labelled, unlabelled = batch["labelled"], batch["unlabelled"]
    model, teacher = lightning.model, lightning.teacher
    with torch.no_grad():
        teacher_logits = teacher(unlabelled["frames"], unlabelled["reference"]).logits
        targets, confidence = pseudo_labels(teacher_logits, lightning.confidence_threshold)

        def strong_view():
            return lightning.strong_view(unlabelled["frames"], unlabelled["reference"],
                                         {"targets": targets, "confidence": confidence})

        *strong, mixed = strong_view()
        targets = mixed["targets"]

    def student_forward_backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs = model(labelled["frames"], labelled["reference"], memory_labels=labelled["label"])
        loss = lightning.supervised_loss(outputs, labelled["label"])["loss"]
        student = model(*strong, memory_labels=targets)
        loss = loss + lightning.unsupervised_loss(student.logits, targets) + sum(student.losses.values())
        loss.backward()

    def teacher_forward() -> None:
        with torch.no_grad():
            teacher(unlabelled["frames"], unlabelled["reference"])

    student_forward_backward()  # gradients for the optimiser step below
    return {
        "student forward+backward": student_forward_backward,
        "teacher forward": teacher_forward,
        "optimizer step": optimizer.step,
        "EMA update": lightning.update_teacher,
        "pseudo-labels": lambda: pseudo_labels(teacher_logits, lightning.confidence_threshold),
        "strong augmentation": strong_view,
    }


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None) -> int:
    """FLOPs of a convolution's backward: the forward's for the input gradient and again for the
    weight gradient. (torch 2.14's own formula ignores `groups`: it counts a depthwise convolution's
    backward as a dense one's, hundreds of times too many FLOPs.)"""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops})


def step_flops(lightning, batch, precision: str = "fp32") -> int:
    counter = flop_counter()
    with counter:
        forward_backward(lightning, batch, precision)
    lightning.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_train_step(args) -> dict:
    results = {}
    backbones = args.backbones.split(",")
    if args.precision not in PRECISIONS:
        raise SystemExit(f"error: --precision must be one of {PRECISIONS}, got {args.precision!r}")
    for backbone in backbones:
        for method in args.methods.split(","):
            cfg, lightning, optimizer, batch = _built(backbone, method, args.overrides)
            lightning.train()
            step = train_step(lightning, optimizer, batch, args.precision)
            flops = step_flops(lightning, batch, args.precision)
            timing = compare_times({"step": step}, args.repeats)["step"]
            labelled = cfg.data.batch_size
            clips = labelled * (2 if lightning.uses_unlabelled else 1)
            entry = {
                "precision": args.precision,
                "batch_size": labelled, "clips_per_step": clips, "frame_size": list(cfg.data.train_transform.crop_size),
                "clip_frames": cfg.data.clip.num_frames, **timing,
                "labelled_clips_per_s": labelled / timing["median_s"], "clips_per_s": clips / timing["median_s"],
                "flops_per_step": flops, "flop_per_s": flops / timing["median_s"],
                "peak_memory_bytes": peak_memory(step),
                "parameters": sum(p.numel() for p in lightning.model.parameters()),
            }
            if method == "mean_teacher" and args.precision == "fp32":
                parts = compare_times(mean_teacher_parts(lightning, optimizer, batch), args.repeats)
                networks = sum(parts[p]["median_s"] for p in ("student forward+backward", "teacher forward"))
                extras = sum(parts[p]["median_s"] for p in ("EMA update", "pseudo-labels", "strong augmentation"))
                entry["parts_s"] = {name: part["median_s"] for name, part in parts.items()}
                # the step minus the networks' compute (and the optimiser step, which every method has)
                entry["overhead_share"] = max(timing["median_s"] - networks - parts["optimizer step"]["median_s"], 0.0) / timing["median_s"]
                entry["overhead_parts_share"] = extras / timing["median_s"]
            results[f"{backbone}/{method}"] = entry
            del lightning, optimizer, batch, step
    rows = [[key, f"{r['median_s']:.3f}", f"{r['labelled_clips_per_s']:.2f}", f"{r['clips_per_s']:.2f}",
             f"{r['flops_per_step'] / 1e9:.1f}", f"{r['flop_per_s'] / 1e9:.1f}", mb(r["peak_memory_bytes"]),
             f"{100 * r['overhead_share']:.1f}% ({100 * r['overhead_parts_share']:.1f}%)" if "overhead_share" in r else "-"]
            for key, r in results.items()]
    show(f"training step ({DEVICE.type})", ["backbone/method", "median s", "labelled clips/s", "clips/s", "GFLOP/step",
                                             "GFLOP/s", "peak MB", "MT overhead (EMA+pseudo+aug)"], rows)
    return {"overrides": args.overrides, "precision": args.precision, "results": results}


# --- roofline ----------------------------------------------------------------------------------
def bench_roofline(args) -> dict:
    """The machine's matmul FLOP/s at --precision, and the share of it that the training steps of
    `train_step` at the same precision achieved (train_step.json, train_step-bf16.json)."""
    n = 8192 if DEVICE.type == "cuda" else 4096
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=DEVICE, dtype=dtype), torch.randn(n, n, device=DEVICE, dtype=dtype)
    timing = compare_times({"gemm": lambda: a @ b}, args.repeats, warmup=2)["gemm"]
    peak = 2 * n**3 / timing["median_s"]
    steps_file = Path(args.out) / ("train_step.json" if args.precision == "fp32" else "train_step-bf16.json")
    achieved = {}
    if steps_file.is_file():
        steps = json.loads(steps_file.read_text())["results"]
        achieved = {key: {"flop_per_s": r["flop_per_s"], "fraction_of_gemm": r["flop_per_s"] / peak} for key, r in steps.items()}
    rows = [[f"{args.precision} GEMM {n}x{n}", f"{peak / 1e9:.1f}", "100%"]]
    rows += [[key, f"{r['flop_per_s'] / 1e9:.1f}", f"{100 * r['fraction_of_gemm']:.1f}%"] for key, r in achieved.items()]
    show(f"roofline ({DEVICE.type}, {torch.get_num_threads()} threads)", ["what", "GFLOP/s", "of GEMM"], rows)
    return {"gemm_size": n, "precision": args.precision, "gemm": timing, "gemm_flop_per_s": peak, "train_step": achieved}
