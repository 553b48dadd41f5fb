"""scripts/params.py: per-module table and a last line with the exact total."""

from __future__ import annotations

import re

from hydra.core.global_hydra import GlobalHydra

import params


def test_params_prints_modules_and_ends_with_the_exact_total(capsys):
    GlobalHydra.instance().clear()
    assert params.main(["model=ssltm", "backbone=tiny", "model.channels=32", "--no-others"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    match = re.fullmatch(r"total_params=(\d+)", out[-1])
    assert match
    GlobalHydra.instance().clear()
    model, _ = params.build_model(["model=ssltm", "backbone=tiny", "model.channels=32"])
    assert int(match.group(1)) == params.count(model)
    text = "\n".join(out)
    for module in ("backbone", "neck", "stt", "context", "gcc", "fuse", "head"):
        assert module in text
