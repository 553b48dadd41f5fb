"""A checkpoint is data, never code: the run config stored in it names classes, and nothing is built
from it before every `_target_` was checked against the suite's own (runs/checkpoints.py)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF, ROOT, compose_config
from PIL import Image

import eval as eval_entry
import predict as predict_entry
from ssltm.errors import CheckpointError
from ssltm.runs.checkpoints import ALLOWED_TARGETS, check_stored_config, load_trained

BEFORE = Path(__file__).parent / "data" / "checkpoints_before_relayer"


def _marker_write(marker: Path) -> dict:
    """A node that writes a file when instantiated (pathlib.Path.write_text)."""
    return {"_target_": "pathlib.Path.write_text", "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]},
            "data": "ran"}


#: the payloads, each of which would create `marker` (or run a command) if it were built
def payloads(marker: Path) -> dict[str, callable]:
    def put(where: str, node: dict):
        def apply(config: dict) -> dict:
            config = copy.deepcopy(config)
            if where == "model":
                config["model"] = node
            elif where == "backbone":
                config["model"]["backbone"] = node
            elif where == "list":
                config["method"]["extra"] = [1, {"deep": [node]}]
            elif where == "optimizer":
                config["method"]["optimizer"] = {**node, "_partial_": True}
            return config
        return apply

    shell = f"touch {marker}"
    return {
        "os.system": put("model", {"_target_": "os.system", "_args_": [shell]}),
        "builtins.exec": put("backbone", {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]}),
        "pathlib.Path.write_text": put("backbone", _marker_write(marker)),
        "numpy.load": put("optimizer", {"_target_": "numpy.load", "file": str(marker), "allow_pickle": True}),
        "subprocess.run": put("list", {"_target_": "subprocess.run", "args": ["touch", str(marker)]}),
        # a chain of two: the outer node is allowed, the inner one writes the file
        "chain": put("model", {"_target_": "ssltm.models.per_frame.PerFrameSegmenter",
                               "backbone": {"_target_": "numpy.load", "file": {**_marker_write(marker)},
                                            "allow_pickle": True}}),
        "interpolation": put("backbone", {"_target_": "ssltm.models.backbones.TimmBackbone",
                                          "name": "${ssltm.num_classes:os.system}"}),
    }


def _crafted(tmp_path: Path, name: str, marker: Path) -> Path:
    spec = json.loads((BEFORE / "per_frame.json").read_text())
    config = payloads(marker)[name](spec["ssltm_run_config"])
    path = tmp_path / f"{name}.ckpt"
    torch.save({"state_dict": {}, "ssltm_run_config": config}, path)
    return path


@pytest.mark.parametrize("name", ["os.system", "builtins.exec", "pathlib.Path.write_text", "numpy.load",
                                  "subprocess.run", "chain", "interpolation"])
def test_a_stored_config_that_names_foreign_code_is_refused_by_eval_and_predict(name, tmp_path):
    marker = tmp_path / "payload_ran"
    crafted = _crafted(tmp_path, name, marker)
    expected = "is an interpolation" if name == "interpolation" else "is not a class of this suite; refused"
    with pytest.raises(CheckpointError, match=expected):
        eval_entry.run(compose_config("eval", [f"ckpt_path={crafted}"], tmp_path / "eval"))
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(frames / "000000.png")
    with pytest.raises(CheckpointError, match=expected):
        predict_entry.run(compose_config(
            "predict", [f"ckpt_path={crafted}", f"input={frames}", f"output={tmp_path / 'pred'}"], tmp_path))
    with pytest.raises(CheckpointError, match=expected):
        load_trained(crafted)  # the iterative stages' loader
    assert not marker.exists(), "building the stored config ran code"


def test_the_refusal_names_the_key_and_the_target():
    config = {"model": {"backbone": {"layers": [{"_target_": "os.system"}]}}}
    with pytest.raises(CheckpointError, match=re.escape("model.backbone.layers[0]._target_ = 'os.system'")):
        check_stored_config(config, "x.ckpt")
    with pytest.raises(CheckpointError, match="is not a class of this suite"):
        check_stored_config({"model": {"_target_": {"nested": "os.system"}}}, "x.ckpt")  # not even a name
    with pytest.raises(CheckpointError, match="not plain data"):
        check_stored_config({"model": {"weights": object()}}, "x.ckpt")
    check_stored_config({"model": {"_target_": "my.Model"}}, "x.ckpt", allow=["my.Model"])  # trusted by name


def test_command_line_refusal_is_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload_ran"
    crafted = _crafted(tmp_path, "os.system", marker)
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(frames / "000000.png")
    for script, extra in (("eval.py", []), ("predict.py", [f"input={frames}", f"output={tmp_path / 'p'}"])):
        proc = subprocess.run([sys.executable, str(ROOT / "src" / script), f"ckpt_path={crafted}", *extra,
                               f"paths.log_dir={tmp_path}"], capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "model._target_ = 'os.system'" in lines[0], proc.stderr
    assert not marker.exists()


def test_every_class_the_suites_configs_name_is_allowed():
    """The allowlist covers every `_target_` of the groups whose config a checkpoint stores."""
    groups = ("data", "backbone", "model", "method", "optimizer", "scheduler", "inference")
    named = set()
    for group in groups:
        for file in (CONF / group).glob("*.yaml"):
            named |= set(re.findall(r"_target_:\s*([\w.]+)", file.read_text()))
    assert named and named <= ALLOWED_TARGETS, sorted(named - ALLOWED_TARGETS)
