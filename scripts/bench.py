"""Speed and memory benchmarks: python scripts/bench.py WHAT [--repeats N] [--out DIR] [key=value ...]

WHAT:
  stt         the STT block, forward + backward, at the default and a VSPW-sized shape, against a
              naive attention that materialises the attention matrix and mask, and against Video
              Swin's shifted windows with attention masks
  train_step  one training step of method=supervised and method=mean_teacher with resnet18,
              resnet101 and swin_s: clips/s, FLOPs (torch.utils.flop_counter), peak memory, and
              where a Mean Teacher step's time goes
  roofline    this machine's fp32 matmul FLOP/s and the share of it a training step achieves
              (reads train_step.json)
  inference   frames/s over a long video: model=per_frame against model=ssltm streaming with and
              without the per-frame feature cache
  data        samples/s of the data modules' training loaders with their configured workers
  all         all of the above, then `report`
  report      BENCHMARKS.md from the JSON files in --out

Every comparison runs its variants in the same process on the same inputs, interleaved; warm-up
runs are excluded and the median of `--repeats` runs is reported. Peak memory: what one run needs
on top of what exists before it (weights, inputs, optimiser state): on a GPU from
torch.cuda.max_memory_allocated, on a CPU from the allocations torch's profiler records. Results: <out>/<what>.json and a table on stdout.
key=value overrides go to the composed training config (train_step, inference, data).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch
from einops import rearrange
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.models.stt import (
    STTBlock,
    crop_padding,
    fit_window,
    pad_to_window,
    padding_mask,
    window_partition,
    window_reverse,
)
from ssltm.runs.config import compose_config

console = Console()
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- measuring ---------------------------------------------------------------------------------
def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def compare_times(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, dict]:
    """Median seconds of each variant over `repeats` runs, the variants interleaved."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            runs[name].append(timed(fn))
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "repeats": len(t)}
            for name, t in runs.items()}


def largest_rise(deltas: list[int]) -> int:
    """The largest rise of a running total of allocations (+) and frees (-): the peak above the
    lowest point before it."""
    total = low = rise = 0
    for delta in deltas:
        total += delta
        low = min(low, total)
        rise = max(rise, total - low)
    return rise


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak memory (bytes) that one steady-state run of `fn()` needs on top of what exists before
    it (weights, inputs, optimiser state), after one warm-up run.

    GPU: torch.cuda.max_memory_allocated. CPU: the allocations and frees that torch's profiler
    records during the run, whose running total's largest rise is the peak (a run that first frees
    the previous gradients and then makes new ones counts them once)."""
    fn()
    sync()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    return largest_rise([e.nbytes() for e in events])


def machine() -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": DEVICE.type,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    if DEVICE.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save(out: Path, what: str, result: dict, tag: str | None = None) -> None:
    """<out>/<what>.json, or <what>-<tag>.json for a further setting of the same benchmark."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"what": what, "tag": tag, "machine": machine(),
              "command": "python scripts/bench.py " + " ".join(sys.argv[1:]), **result}
    path = out / (f"{what}-{tag}.json" if tag else f"{what}.json")
    path.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {path}")


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def show(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    console.print(table)


# --- stt ---------------------------------------------------------------------------------------
STT_SHAPES = {
    # synthetic default: batch 8 of 96x128 frames, T = 4, C = 320, stride-8 features 12 x 16
    "default": dict(batch=8, frames=4, channels=320, height=12, width=16),
    # VSPW: 480x480 training crops, batch 2 per GPU, T = 4: stride-8 features 60 x 60
    "vspw": dict(batch=2, frames=4, channels=320, height=60, width=60),
}


class NaiveSTTBlock(STTBlock):
    """The STT block with attention written out: the full attention matrix and an additive mask
    (nW x N x N) are materialised, as in Swin / Video Swin's reference code."""

    def attention(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        B, T, H, W, C = x.shape
        window = fit_window(self.window, (T, H, W))
        padded, pads = pad_to_window(x, window)
        thw = tuple(padded.shape[1:4])
        windows = window_partition(padded, window)  # B*nW N C
        valid = padding_mask((T, H, W), pads, window, x.device)  # nW N
        mask = torch.zeros(valid.shape[0], valid.shape[1], valid.shape[1], device=x.device, dtype=x.dtype)
        mask = mask.masked_fill(~valid[:, None, :], float("-inf"))  # nW N N
        out = crop_padding(window_reverse(naive_attention(self.attn, windows, mask), window, thw, B), pads)
        return out[:, -1:] if query_only else out


def naive_attention(attn, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, written out. windows: B*nW N C; mask: nW N N."""
    q, k, v = rearrange(attn.qkv(windows), "b n (three h d) -> three b h n d", three=3, h=attn.num_heads)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # B*nW heads N N
    nW = mask.shape[0]
    scores = scores.view(-1, nW, *scores.shape[1:]) + mask[None, :, None]
    out = scores.flatten(0, 1).softmax(-1) @ v  # B*nW heads N d
    return attn.proj(rearrange(out, "b h n d -> b n (h d)"))


def shifted_window_mask(thw: tuple[int, int, int], window: tuple, shift: tuple, device) -> torch.Tensor:
    """Video Swin's attention mask for cyclically shifted windows: nW N N, -100 between tokens
    of different regions (compute_mask in the official implementation)."""
    T, H, W = thw
    regions = torch.zeros(1, T, H, W, 1, device=device)
    count = 0
    for t in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for h in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for w in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                regions[:, t, h, w, :] = count
                count += 1
    ids = window_partition(regions, window)[..., 0]  # nW N
    mask = ids[:, None, :] - ids[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class ShiftedSTTBlock(STTBlock):
    """Video Swin's shifted-window attention (SW-MSA): the volume is rolled by half a window, a
    region mask keeps tokens from attending across the roll's seams, attention is written out."""

    def attention(self, x: torch.Tensor, query_only: bool = False) -> torch.Tensor:
        B, T, H, W, C = x.shape
        window = fit_window(self.window, (T, H, W))
        shift = tuple(0 if w >= s else w // 2 for w, s in zip(self.window, (T, H, W)))  # Video Swin's rule
        padded, pads = pad_to_window(x, window)
        thw = tuple(padded.shape[1:4])
        rolled = torch.roll(padded, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        windows = window_partition(rolled, window)  # B*nW N C
        mask = shifted_window_mask(thw, window, shift, x.device)
        out = window_reverse(naive_attention(self.attn, windows, mask), window, thw, B)
        out = crop_padding(torch.roll(out, shifts=shift, dims=(1, 2, 3)), pads)
        return out[:, -1:] if query_only else out


STT_VARIANTS = {"stt (ours, SDPA)": STTBlock, "naive": NaiveSTTBlock, "shifted windows": ShiftedSTTBlock}


def stt_case(variant: str, shape: str, part: str = "block") -> Callable[[], None]:
    """Forward + backward of one STT block (default config: 8 heads, window 4x8x8) on fixed input;
    `part="attention"`: of its window-attention sublayer alone (no norms, no Mix-FFN)."""
    s = STT_SHAPES[shape]
    torch.manual_seed(0)
    block = STT_VARIANTS[variant](s["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE)
    x = torch.randn(s["batch"], s["frames"], s["height"], s["width"], s["channels"], device=DEVICE, requires_grad=True)

    forward = block if part == "block" else block.attention

    def run() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        forward(x).square().mean().backward()

    return run


def bench_stt(args) -> dict:
    results = {}
    for shape, dims in STT_SHAPES.items():
        # the naive block computes the same function as ours (same weights): check before timing
        torch.manual_seed(0)
        ours = STTBlock(dims["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE).eval()
        naive = NaiveSTTBlock(dims["channels"], num_heads=8, window=(4, 8, 8)).to(DEVICE).eval()
        naive.load_state_dict(ours.state_dict())
        x = torch.randn(1, dims["frames"], dims["height"], dims["width"], dims["channels"], device=DEVICE)
        with torch.no_grad():
            difference = float((ours(x) - naive(x)).abs().max())
        results[shape] = {"shape": dims, "max_abs_difference_ours_vs_naive": difference}
        for part in ("block", "attention"):
            times = compare_times({v: stt_case(v, shape, part) for v in STT_VARIANTS}, args.repeats)
            memory = {v: peak_memory(stt_case(v, shape, part)) for v in STT_VARIANTS}
            base = "stt (ours, SDPA)"
            results[shape][part] = {
                v: {**times[v], "peak_memory_bytes": memory[v],
                    "speedup_of_ours": times[v]["median_s"] / times[base]["median_s"],
                    "memory_ratio_to_ours": (memory[v] / memory[base]) if memory[v] and memory[base] else None}
                for v in STT_VARIANTS
            }
            rows = [[v, f"{1000 * r['median_s']:.1f}", f"{r['speedup_of_ours']:.2f}x", mb(r["peak_memory_bytes"]),
                     f"{r['memory_ratio_to_ours']:.2f}x" if r["memory_ratio_to_ours"] else "n/a"]
                    for v, r in results[shape][part].items()]
            show(f"STT {part} fwd+bwd, {shape} shape {dims} ({DEVICE.type})",
                 ["variant", "median ms", "time / ours", "peak MB", "memory / ours"], rows)
    return {"results": results}


# --- train_step ----------------------------------------------------------------------------------
BACKBONES = ("resnet18", "resnet101", "swin_s")
METHODS = ("supervised", "mean_teacher")


def _built(backbone: str, method: str, overrides: list[str]):
    cfg = compose_config("train", [f"backbone={backbone}", f"method={method}", "data.num_workers=0", *overrides],
                         ROOT / "outputs" / "bench")
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.use_unlabelled = method != "supervised"
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    batch = batch[0] if isinstance(batch, tuple) else batch
    model = instantiate(cfg.model)
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


def train_step(lightning, optimizer, batch) -> Callable[[], None]:
    """One training step as Lightning runs it: loss, backward, optimiser step, teacher update."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        lightning.training_loss(batch, 0).backward()
        optimizer.step()
        if hasattr(lightning, "update_teacher"):
            lightning.update_teacher()

    return step


def mean_teacher_parts(lightning, optimizer, batch) -> dict[str, Callable[[], object]]:
    """The parts of a Mean Teacher step, each runnable alone on the same batch."""
    from ssltm.methods.mean_teacher import pseudo_labels

    labelled, unlabelled = batch["labelled"], batch["unlabelled"]
    model, teacher = lightning.model, lightning.teacher
    with torch.no_grad():
        teacher_logits = teacher(unlabelled["frames"], unlabelled["reference"]).logits
        targets, _ = pseudo_labels(teacher_logits, lightning.confidence_threshold)
        strong = lightning.strong_view(unlabelled["frames"], unlabelled["reference"])

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
        "strong augmentation": lambda: lightning.strong_view(unlabelled["frames"], unlabelled["reference"]),
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


def step_flops(lightning, batch) -> int:
    counter = flop_counter()
    with counter:
        lightning.training_loss(batch, 0).backward()
    lightning.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_train_step(args) -> dict:
    results = {}
    backbones = args.backbones.split(",")
    for backbone in backbones:
        for method in METHODS:
            cfg, lightning, optimizer, batch = _built(backbone, method, args.overrides)
            lightning.train()
            step = train_step(lightning, optimizer, batch)
            flops = step_flops(lightning, batch)
            timing = compare_times({"step": step}, args.repeats)["step"]
            labelled = cfg.data.batch_size
            clips = labelled * (2 if method == "mean_teacher" else 1)
            entry = {
                "batch_size": labelled, "clips_per_step": clips, "frame_size": list(cfg.data.train_transform.crop_size),
                "clip_frames": cfg.data.clip.num_frames, **timing,
                "labelled_clips_per_s": labelled / timing["median_s"], "clips_per_s": clips / timing["median_s"],
                "flops_per_step": flops, "flop_per_s": flops / timing["median_s"],
                "peak_memory_bytes": peak_memory(step),
                "parameters": sum(p.numel() for p in lightning.model.parameters()),
            }
            if method == "mean_teacher":
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
    return {"overrides": args.overrides, "results": results}


# --- roofline ----------------------------------------------------------------------------------
def bench_roofline(args) -> dict:
    n = 4096
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    timing = compare_times({"gemm": lambda: a @ b}, args.repeats, warmup=2)["gemm"]
    peak = 2 * n**3 / timing["median_s"]
    steps_file = Path(args.out) / "train_step.json"
    achieved = {}
    if steps_file.is_file():
        steps = json.loads(steps_file.read_text())["results"]
        achieved = {key: {"flop_per_s": r["flop_per_s"], "fraction_of_gemm": r["flop_per_s"] / peak} for key, r in steps.items()}
    rows = [[f"fp32 GEMM {n}x{n}", f"{peak / 1e9:.1f}", "100%"]]
    rows += [[key, f"{r['flop_per_s'] / 1e9:.1f}", f"{100 * r['fraction_of_gemm']:.1f}%"] for key, r in achieved.items()]
    show(f"roofline ({DEVICE.type}, {torch.get_num_threads()} threads)", ["what", "GFLOP/s", "of GEMM"], rows)
    return {"gemm_size": n, "gemm": timing, "gemm_flop_per_s": peak, "train_step": achieved}


# --- inference -----------------------------------------------------------------------------------
def bench_inference(args) -> dict:
    from ssltm.inference.streaming import StreamingSegmenter

    frames = args.video_frames
    cfg = compose_config("train", [f"data.source.num_frames={frames}", "data.source.val_videos=1", *args.overrides],
                         ROOT / "outputs" / "bench")
    datamodule = instantiate(cfg.data)
    video = datamodule.source.videos("val")[0]
    images = [video.frame(t) for t in range(video.num_frames)]
    networks = {}
    for name in ("per_frame", "ssltm"):
        model_cfg = compose_config("train", [f"model={name}", *args.overrides], ROOT / "outputs" / "bench").model
        torch.manual_seed(0)
        networks[name] = instantiate(model_cfg)
    streams = {
        "per_frame": lambda: StreamingSegmenter(networks["per_frame"], datamodule.clip, datamodule.eval_transform, device=DEVICE),
        "ssltm (feature cache)": lambda: StreamingSegmenter(networks["ssltm"], datamodule.clip, datamodule.eval_transform,
                                                            device=DEVICE, cache_features=True),
        "ssltm (every clip recomputed)": lambda: StreamingSegmenter(networks["ssltm"], datamodule.clip,
                                                                    datamodule.eval_transform, device=DEVICE, cache_features=False),
    }

    def run(make) -> Callable[[], None]:
        def whole_video() -> None:
            stream = make()
            for image in images:
                stream.push(image)
        return whole_video

    times = compare_times({name: run(make) for name, make in streams.items()}, args.repeats)
    base = times["per_frame"]["median_s"]
    results = {name: {**t, "fps": frames / t["median_s"], "fps_ratio_to_per_frame": base / t["median_s"]}
               for name, t in times.items()}
    rows = [[name, f"{r['fps']:.2f}", f"{r['fps_ratio_to_per_frame']:.2f}x"] for name, r in results.items()]
    show(f"streaming inference, {frames} frames of {images[0].shape[1]}x{images[0].shape[0]}, "
         f"backbone {cfg.backbone.name} ({DEVICE.type})", ["model", "frames/s", "of per_frame"], rows)
    return {"frames": frames, "frame_size": list(images[0].shape[:2]), "backbone": cfg.backbone.name,
            "clip_frames": cfg.data.clip.num_frames, "results": results}


# --- data --------------------------------------------------------------------------------------
def data_configs() -> dict[str, list[str]]:
    configs = {"synthetic": ["data=synthetic"]}
    camvid = ROOT.parent / "shared" / "camvid"
    if camvid.is_dir():
        configs["camvid"] = ["data=camvid", f"data.root={camvid}"]
    return configs


def bench_data(args) -> dict:
    results = {}
    for name, overrides in data_configs().items():
        cfg = compose_config("train", [*overrides, "method=mean_teacher", *args.overrides], ROOT / "outputs" / "bench")
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        batches = args.data_batches
        iterator = iter(loader)
        next(iterator)  # workers started, first batch (warm-up)
        start = time.perf_counter()
        count = 0
        for _ in range(batches):
            batch = next(iterator)
            batch = batch[0] if isinstance(batch, tuple) else batch
            count += sum(part["frames"].shape[0] for part in batch.values())
        seconds = time.perf_counter() - start
        results[name] = {"num_workers": cfg.data.num_workers, "batches": batches, "samples": count,
                         "samples_per_s": count / seconds, "frame_size": list(cfg.data.train_transform.crop_size),
                         "clip_frames": cfg.data.clip.num_frames}
        del iterator, loader
    rows = [[name, r["num_workers"], f"{r['samples_per_s']:.1f}", r["frame_size"]] for name, r in results.items()]
    show("training loaders (labelled + unlabelled clips)", ["data", "workers", "clips/s", "crop"], rows)
    return {"results": results}


# --- report ------------------------------------------------------------------------------------
def report(out: Path) -> str:
    """BENCHMARKS.md's tables from the JSON files in `out`."""
    lines = []
    for what in ("stt", "train_step", "roofline", "inference", "data"):
        for path in sorted(out.glob(f"{what}*.json")):
            result = json.loads(path.read_text())
            if result.get("what", what) != what:
                continue
            m = result["machine"]
            title = f"{what} ({result['tag']})" if result.get("tag") else what
            lines += [f"### {title}", "", f"`{result['command']}`, {m['date']}, {m['device']}: {m.get('gpu', m['cpu'])}, "
                      f"{m['cpu_threads']} threads, torch {m['torch']}", ""]
            if what == "stt":
                lines += ["| shape (B, T, C, h, w) | part | variant | median ms | time / ours | peak MB | memory / ours |",
                          "|---|---|---|---|---|---|---|"]
                for shape, r in result["results"].items():
                    for part in ("block", "attention"):
                        for v, x in r[part].items():
                            ratio = f"{x['memory_ratio_to_ours']:.2f}x" if x["memory_ratio_to_ours"] else "n/a"
                            lines.append(f"| {shape} {tuple(r['shape'].values())} | {part} | {v} | {1000 * x['median_s']:.1f} | "
                                         f"{x['speedup_of_ours']:.2f}x | {mb(x['peak_memory_bytes'])} | {ratio} |")
            elif what == "train_step":
                lines += ["| backbone / method | s/step | labelled clips/s | clips/s | GFLOP/step | GFLOP/s | peak MB | MT overhead |",
                          "|---|---|---|---|---|---|---|---|"]
                for key, r in result["results"].items():
                    over = f"{100 * r['overhead_share']:.1f}% ({100 * r['overhead_parts_share']:.1f}%)" if "overhead_share" in r else "-"
                    lines.append(f"| {key} | {r['median_s']:.3f} | {r['labelled_clips_per_s']:.2f} | {r['clips_per_s']:.2f} | "
                                 f"{r['flops_per_step'] / 1e9:.1f} | {r['flop_per_s'] / 1e9:.1f} | {mb(r['peak_memory_bytes'])} | {over} |")
                parts = {k: r["parts_s"] for k, r in result["results"].items() if "parts_s" in r}
                if parts:
                    names = list(next(iter(parts.values())))
                    lines += ["", "| Mean Teacher step, median s | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
                    for key, p in parts.items():
                        lines.append(f"| {key} | " + " | ".join(f"{p[n]:.4f}" for n in names) + " |")
            elif what == "roofline":
                lines += ["| what | GFLOP/s | of GEMM |", "|---|---|---|",
                          f"| fp32 GEMM {result['gemm_size']}x{result['gemm_size']} | {result['gemm_flop_per_s'] / 1e9:.1f} | 100% |"]
                for key, r in result["train_step"].items():
                    lines.append(f"| train step {key} | {r['flop_per_s'] / 1e9:.1f} | {100 * r['fraction_of_gemm']:.1f}% |")
            elif what == "inference":
                lines += [f"{result['frames']} frames of {result['frame_size'][1]}x{result['frame_size'][0]}, backbone "
                          f"{result['backbone']}, T = {result['clip_frames']}", "",
                          "| model | frames/s | of per_frame |", "|---|---|---|"]
                for name, r in result["results"].items():
                    lines.append(f"| {name} | {r['fps']:.2f} | {r['fps_ratio_to_per_frame']:.2f}x |")
            elif what == "data":
                lines += ["| data | workers | clips/s | crop |", "|---|---|---|---|"]
                for name, r in result["results"].items():
                    lines.append(f"| {name} | {r['num_workers']} | {r['samples_per_s']:.1f} | {r['frame_size']} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["stt", "train_step", "roofline", "inference", "data", "all", "report"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / DEVICE.type))
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="train_step: comma-separated backbone configs")
    parser.add_argument("--video-frames", type=int, default=120, help="inference: length of the video")
    parser.add_argument("--data-batches", type=int, default=20, help="data: batches timed per loader")
    parser.add_argument("--tag", default=None, help="save as <what>-<tag>.json (a further setting)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the training config")
    args = parser.parse_intermixed_args()
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    benches = {"stt": bench_stt, "train_step": bench_train_step, "roofline": bench_roofline,
               "inference": bench_inference, "data": bench_data}
    for what in (benches if args.what == "all" else [args.what] if args.what != "report" else []):
        save(out, what, benches[what](args), args.tag)
    if args.what in ("all", "report"):
        text = report(out)
        (out / "tables.md").write_text(text)
        console.print(text)


if __name__ == "__main__":
    main()
