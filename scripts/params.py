"""Parameter count of a model config, per module and in total.

    python scripts/params.py model=ssltm backbone=swin_s [other overrides] [--no-others]

Prints a table of the model's top-level modules, then (unless --no-others) the total of the same
model on every backbone of conf/backbone next to the paper's count where it gives one. The last
line is `total_params=<int>` of the requested config.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SSLTM_ROOT", str(ROOT))

from hydra.utils import instantiate  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch import nn  # noqa: E402

import ssltm  # noqa: E402,F401  (registers config resolvers)
from ssltm.utils.config import compose_config  # noqa: E402

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
