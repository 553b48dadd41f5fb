"""Train a video segmenter: python src/train.py [model=ssltm] [method=...] [data=...] [key=value ...]

`run(cfg)` does the work and is what tests call; `main` only wraps it with Hydra.
"""

from __future__ import annotations

import shlex
import signal
import sys

import hydra
from omegaconf import DictConfig

import ssltm  # noqa: F401  (registers the config resolvers)
from ssltm.errors import find_user_error, user_error_message
from ssltm.runs.fit import fit
from ssltm.runs.iterative import run_iterative
from ssltm.runs.resume import TrainingInterrupted


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """Train as configured: one fit, or the stages of iterative self-training (`method=iterative`).

    Returns the final evaluation (also written to `<output_dir>/metrics.json`) and the objects.
    """
    if cfg.get("iterative"):
        return run_iterative(cfg)
    return fit(cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        result, _ = run(cfg)
    except TrainingInterrupted as stop:
        print(
            f"training interrupted by {signal.Signals(stop.signum).name} after step {stop.step}; "
            f"checkpoint saved: {stop.checkpoint}\nresume with the same command and "
            f"ckpt_path={shlex.quote(str(stop.checkpoint))}",
            file=sys.stderr,
        )
        raise SystemExit(stop.exit_code) from None
    except Exception as err:  # a user error, possibly wrapped by Hydra's instantiate: one line
        user = find_user_error(err)
        if user is None:
            raise
        raise SystemExit(user_error_message(user)) from None
    metric = cfg.get("optimized_metric")
    return result.get(metric.split("/")[-1]) if metric and result else None


if __name__ == "__main__":
    main()
