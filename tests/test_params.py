"""scripts/params.py: per-module table and a last line with the exact total."""

from __future__ import annotations

import re

import params
import torch
from hydra.core.global_hydra import GlobalHydra


def test_params_prints_modules_and_ends_with_the_exact_total(capsys):
    GlobalHydra.instance().clear()
    assert params.main(["model=ssltm", "backbone=tiny", "model.channels=32", "--no-others"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    match = re.fullmatch(r"total_params=(\d+)", out[-1])
    assert match
    GlobalHydra.instance().clear()
    model, _ = params.build_model(["model=ssltm", "backbone=tiny", "model.channels=32"])
    # counted independently: every distinct tensor's elements, and again module by module
    assert int(match.group(1)) == sum(t.numel() for t in {id(p): p for p in model.parameters()}.values())
    by_module = dict(model.named_children())
    assert int(match.group(1)) == sum(sum(p.numel() for p in m.parameters()) for m in by_module.values())
    # the head's classifier by hand: a 1x1 conv from C=32 to 7 classes, with bias
    classifier = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert classifier.weight.numel() + classifier.bias.numel() == 32 * 7 + 7
    table = {m[1]: int(m[2].replace(",", "")) for m in (re.search(r"(\w+)\W+([\d,]+)\W", line) for line in out) if m}
    for module in ("backbone", "neck", "stt", "context", "gcc", "fuse", "head"):
        assert table[module] == sum(p.numel() for p in by_module[module].parameters()), module


def test_params_all_writes_every_model_next_to_the_paper(tmp_path, monkeypatch):
    monkeypatch.setattr(params, "ALL_BACKBONES", ("tiny",))  # every model, one small backbone
    assert params.main(["--all", f"out={tmp_path / 'p.md'}"]) == 0
    rows = [r for r in (tmp_path / "p.md").read_text().splitlines() if r.startswith("| ")][1:]
    models = {r.split(" | ")[0].strip("| ") for r in rows}
    assert {"ssltm", "per_frame", "deeplabv3plus", "netwarp", "etc", "tcb", "segmenter"} <= models
    upernet = next(r for r in rows if r.startswith("| upernet "))
    assert "| 58.1 |" in upernet and "%" in upernet  # the paper's count and the difference
