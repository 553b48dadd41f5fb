"""Parameter count of a model config, per module and in total.

    python scripts/params.py model=ssltm backbone=swin_s [other overrides] [--no-others]
    python scripts/params.py --all [out=params.md]      # every model x backbone, VSPW's 124 classes

Prints a table of the model's top-level modules, then (unless --no-others) the total of the same
model on every backbone of conf/backbone next to the paper's count where it gives one. The last
line is `total_params=<int>` of the requested config. `--all` prints (and with `out=` writes as
markdown) every model of conf/model on the paper's and the CPU backbones, with the paper's count
(supplementary Table 1, Swin-S), the difference and why it differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table
from torch import nn

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.runs.config import compose_config

#: supplementary Table 1 (VSPW, Swin-S backbone), in millions of parameters
PAPER_PARAMS_M = {
    ("ssltm", "swin_s"): 59.3,
    ("deeplabv3plus", "swin_s"): 59.5,
    ("upernet", "swin_s"): 58.1,
    ("pspnet", "swin_s"): 64.1,
    ("ocrnet", "swin_s"): 55.5,
    ("segmenter", "swin_s"): 57.8,
    ("etc", "swin_s"): 55.5,
    ("netwarp", "swin_s"): 55.5,
    ("tcb", "swin_s"): 55.5,
}


#: backbones of the `--all` table, and the models whose count differs from the paper's, and why
ALL_BACKBONES = ("resnet18", "resnet50", "resnet101", "swin_t", "swin_s", "dinov2_s", "dinov2_b")
NOTES = {
    "ssltm": "the design of DESIGN.md (neck C=256, 2 STT blocks, RFCE, GCC K=3)",
    "deeplabv3plus": "separable ASPP, 512 channels as mmseg's, at stride 32 (Swin is not dilated) + stride-4 fusion",
    "pspnet": "smp's PSPDecoder (1x1 bottleneck to 512); mmseg's PSPHead, which the paper's count fits, "
              "has a 3x3 bottleneck from 768 + 4 x 512 channels (+13M)",
    "upernet": "smp's UPerNetDecoder, 256 channels (mmseg's Swin-S UPerNet has 512: 81M)",
    "ocrnet": "OCR on the all-MLP neck (512 channels) instead of HRNet's concatenated levels",
    "segmenter": "2 mask-transformer layers of width 384 on the last level",
    "netwarp": "per-frame neck (256) + RAFT-small (0.99M, frozen) + FlowCNN",
    "etc": "per-frame neck (256) + RAFT-small (0.99M, frozen); no distillation teacher",
    "tcb": "per-frame neck (256) + one attention over the previous frames",
    "per_frame": "the suite's own image-based lower bound (neck C=128); not in the paper",
}


def all_models_table(out: str | None = None) -> Table:
    """Every model x ALL_BACKBONES, with VSPW's 124 classes, next to the paper's Swin-S count."""
    models = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
    table = Table(title="parameters (M), VSPW's 124 classes")
    compared = "swin_s" if "swin_s" in ALL_BACKBONES else ALL_BACKBONES[-1]  # the paper's backbone when counted
    columns = ["model", *ALL_BACKBONES, "paper, Swin-S", f"difference ({compared})", "why"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "why") else "right")
    rows = []
    for model in models:
        counts = [count(build_model([f"model={model}", f"backbone={b}", "data=vspw"])[0]) / 1e6 for b in ALL_BACKBONES]
        paper = PAPER_PARAMS_M.get((model, "swin_s"))
        ours = counts[ALL_BACKBONES.index(compared)]
        diff = f"{100 * (ours - paper) / paper:+.1f}%" if paper else ""
        rows.append([model, *[f"{c:.2f}" for c in counts], f"{paper}" if paper else "-", diff, NOTES.get(model, "")])
        table.add_row(*rows[-1])
    if out:
        lines = ["# Parameters (millions), VSPW's 124 classes", "",
                 "Written by `python scripts/params.py --all out=docs/params.md`; the paper's counts are "
                 "supplementary Table 1 (Swin-S).", "",
                 "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        Path(out).write_text("\n".join(lines) + "\n")
    return table


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_model(overrides: list[str]) -> tuple[nn.Module, dict]:
    cfg = compose_config("train", overrides, ROOT / "outputs")
    choices = {
        "model": cfg.model._target_.rsplit(".", 1)[-1],
        "backbone": cfg.backbone.name,
    }
    return instantiate(cfg.model), choices


def choice(overrides: list[str], group: str, default: str) -> str:
    for item in overrides:
        if item.startswith(f"{group}="):
            return item.split("=", 1)[1]
    return default


def main(argv: list[str]) -> int:
    if "--all" in argv:
        out = next((a.split("=", 1)[1] for a in argv if a.startswith("out=")), None)
        Console(width=200).print(all_models_table(out))
        return 0
    others = "--no-others" not in argv
    overrides = [a for a in argv if a != "--no-others"]
    console = Console()
    model, names = build_model(overrides)
    table = Table(title=f"parameters: {' '.join(overrides) or '(defaults)'}")
    table.add_column("module")
    table.add_column("params", justify="right")
    table.add_column("share", justify="right")
    total = count(model)
    for name, child in model.named_children():
        table.add_row(name, f"{count(child):,}", f"{100 * count(child) / max(total, 1):.1f}%")
    table.add_row("total", f"{total:,}", "100%")
    console.print(table)

    if others:
        model_name = choice(overrides, "model", "per_frame")
        summary = Table(title=f"model={model_name} on every backbone")
        for column in ("backbone", "params (M)", "paper (M)", "difference"):
            summary.add_column(column, justify="right" if column != "backbone" else "left")
        for path in sorted((ROOT / "conf" / "backbone").glob("*.yaml")):
            if path.stem == "tiny":
                continue
            rest = [o for o in overrides if not o.startswith("backbone=")]
            n = count(build_model([*rest, f"backbone={path.stem}"])[0]) / 1e6
            paper = PAPER_PARAMS_M.get((model_name, path.stem))
            diff = f"{100 * (n - paper) / paper:+.1f}%" if paper else ""
            summary.add_row(path.stem, f"{n:.2f}", f"{paper}" if paper else "-", diff)
        console.print(summary)
    print(f"total_params={total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
