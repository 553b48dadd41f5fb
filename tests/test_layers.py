"""The package's layers (README "Layout"): each imports only from the layers below it, and
`methods/` holds LightningModules only."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import pytorch_lightning as pl

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ssltm"
GROUND = {"ssltm", "constants", "errors", "utils"}
#: layer -> the layers its modules may import (the ground floor always)
ALLOWED = {
    "ground": set(),
    "data": {"data"},
    "models": {"models"},
    "metrics": {"metrics"},
    "inference": {"data", "models", "metrics", "inference"},
    "methods": {"data", "models", "metrics", "inference", "methods"},
    "runs": {"data", "models", "metrics", "inference", "methods", "runs"},
}


def layer_of(module: str) -> str:
    """ssltm.<part>... -> its layer name."""
    part = module.split(".")[1] if module.count(".") else "ssltm"
    return "ground" if part in GROUND else part


def ssltm_imports(path: Path) -> set[str]:
    """Every `ssltm.*` module imported anywhere in the file (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ssltm":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ssltm"}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_from_its_layer_and_below(path):
    name = ".".join(("ssltm", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    layer = layer_of(name)
    assert layer in ALLOWED, f"{name}: a folder the layers do not name ({layer})"
    wrong = {m for m in ssltm_imports(path) if layer_of(m) != "ground" and layer_of(m) not in ALLOWED[layer]}
    if name == "ssltm":  # the package root registers the resolvers, nothing else
        wrong = {m for m in ssltm_imports(path) if m != "ssltm.utils.resolvers"}
    assert not wrong, f"{name} ({layer}) imports {sorted(wrong)}"


def test_the_layer_check_catches_an_upward_import(tmp_path):
    module = tmp_path / "gcc.py"
    module.write_text("from ssltm.data.info import DatasetInfo\n\ndef f():\n    import ssltm.methods.base\n")
    imported = ssltm_imports(module)
    assert imported == {"ssltm.data.info", "ssltm.methods.base"}
    assert {layer_of(m) for m in imported} - ALLOWED["models"] == {"data", "methods"}


def test_methods_hold_lightning_modules_only_and_build_no_loader():
    import importlib

    for path in sorted((PACKAGE / "methods").glob("*.py")):
        source = path.read_text()
        assert "DataLoader" not in source, f"{path.name} builds a DataLoader"
        module = importlib.import_module(f"ssltm.methods.{path.stem}")
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
        for cls in classes:
            assert issubclass(cls, pl.LightningModule), f"methods/{path.name}: {cls.__name__} is not a LightningModule"
