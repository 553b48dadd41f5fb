"""Speed and memory benchmarks: python scripts/bench.py WHAT [--repeats N] [--out DIR] [key=value ...]

WHAT:
  stt         the STT block, forward + backward, at the default and a VSPW-sized shape, against a
              naive attention that materialises the attention matrix and mask, and against Video
              Swin's shifted windows with attention masks
  train_step  one training step of method=supervised and method=mean_teacher (--methods: any
              others, e.g. fixmatch,unimatch) with resnet18, resnet101 and swin_s (--backbones):
              clips/s, FLOPs (torch.utils.flop_counter), peak memory, and where a Mean Teacher
              step's time goes; --precision bf16 for autocast as trainer=gpu trains
  roofline    this machine's fp32 matmul FLOP/s and the share of it a training step achieves
              (reads train_step.json)
  inference   frames/s over a long video: model=per_frame against model=ssltm streaming with and
              without the per-frame feature cache
  data        samples/s of the data modules' training loaders with their configured workers
  soak        resident memory of a 1,000-step Mean Teacher run (GCC on), every 50 steps: does it leak?
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
import warnings
from pathlib import Path

from measure.data_loading import bench_data
from measure.inference_speed import bench_inference
from measure.report import report
from measure.soak import bench_soak
from measure.stt_attention import bench_stt
from measure.timing import DEVICE, ROOT, console, save
from measure.train_step import BACKBONES, METHODS, PRECISIONS, bench_roofline, bench_train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["stt", "train_step", "roofline", "inference", "data", "soak", "all", "report"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / DEVICE.type))
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="train_step: comma-separated backbone configs")
    parser.add_argument("--methods", default=",".join(METHODS), help="train_step: comma-separated method configs")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="train_step: bf16 runs the forward under autocast (trainer.precision=bf16-mixed); "
                             "roofline: the GEMM in this precision, against train_step at it")
    parser.add_argument("--video-frames", type=int, default=120, help="inference: length of the video")
    parser.add_argument("--data-batches", type=int, default=20, help="data: batches timed per loader")
    parser.add_argument("--soak-steps", type=int, default=1000, help="soak: training steps")
    parser.add_argument("--soak-every", type=int, default=50, help="soak: steps between two memory samples")
    parser.add_argument("--tag", default=None, help="save as <what>-<tag>.json (a further setting)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the training config")
    args = parser.parse_intermixed_args()
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    benches = {"stt": bench_stt, "train_step": bench_train_step, "roofline": bench_roofline,
               "inference": bench_inference, "data": bench_data, "soak": bench_soak}
    for what in (benches if args.what == "all" else [args.what] if args.what != "report" else []):
        save(out, what, benches[what](args), args.tag)
    if args.what in ("all", "report"):
        text = report(out)
        (out / "tables.md").write_text(text)
        console.print(text)


if __name__ == "__main__":
    main()
