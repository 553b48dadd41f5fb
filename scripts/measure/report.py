"""`bench.py report`: BENCHMARKS.md tables from the JSON results."""

from __future__ import annotations

import json
from pathlib import Path

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import mb


# --- report ------------------------------------------------------------------------------------
def report(out: Path) -> str:
    """BENCHMARKS.md's tables from the JSON files in `out`."""
    lines = []
    for what in ("stt", "train_step", "roofline", "inference", "data", "soak"):
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
                          f"| {result.get('precision', 'fp32')} GEMM {result['gemm_size']}x{result['gemm_size']} | {result['gemm_flop_per_s'] / 1e9:.1f} | 100% |"]
                for key, r in result["train_step"].items():
                    lines.append(f"| train step {key} | {r['flop_per_s'] / 1e9:.1f} | {100 * r['fraction_of_gemm']:.1f}% |")
            elif what == "inference":
                lines += [f"{result['frames']} frames of {result['frame_size'][1]}x{result['frame_size'][0]}, backbone "
                          f"{result['backbone']}, T = {result['clip_frames']}", "",
                          "| model | frames/s | of per_frame |", "|---|---|---|"]
                for name, r in result["results"].items():
                    lines.append(f"| {name} | {r['fps']:.2f} | {r['fps_ratio_to_per_frame']:.2f}x |")
            elif what == "soak":
                first, last = result["rss_mb"][0], result["rss_mb"][-1]
                at_200 = next((r for s, r in result["rss_mb"] if s >= 200), float("nan"))
                ok = "yes" if result["growth_from_step_200"] < result["target"] else "**no**"
                lines += [f"{result['experiment']}, {result['steps']} steps in {result['seconds']:.0f} s, resident memory "
                          f"of the training process every {result['every']} steps", "",
                          "| RSS at step | first sample | 200 | last | growth 200 -> last | under 5% |", "|---|---|---|---|---|---|",
                          f"| MB | {first[1]:.1f} (step {first[0]}) | {at_200:.1f} | {last[1]:.1f} (step {last[0]}) | "
                          f"{100 * result['growth_from_step_200']:.2f}% | {ok} |"]
            elif what == "data":
                lines += ["| data | workers | clips/s | crop |", "|---|---|---|---|"]
                for name, r in result["results"].items():
                    lines.append(f"| {name} | {r['num_workers']} | {r['samples_per_s']:.1f} | {r['frame_size']} |")
            lines.append("")
    return "\n".join(lines)
