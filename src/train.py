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
from ssltm.runs.lightning import RUN_LOG, attach_run_log
from ssltm.runs.iterative import run_iterative
from ssltm.runs.resume import EvaluationInterrupted, TrainingInterrupted
from ssltm.runs.sweep import in_multirun, record_failed_job


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """Train as configured: one fit, or the stages of iterative self-training (`method=iterative`).

    Returns the final evaluation (also written to `<output_dir>/metrics.json`) and the objects.
    """
    if cfg.get("iterative"):
        return run_iterative(cfg)
    return fit(cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    attach_run_log()  # this job's log file gets the run's lines (and errors), the console only rich's
    try:
        result, _ = run(cfg)
    except TrainingInterrupted as stop:
        RUN_LOG.warning("interrupted by %s after step %d; %s saved", signal.Signals(stop.signum).name, stop.step, stop.checkpoint)
        print(
            f"training interrupted by {signal.Signals(stop.signum).name} after step {stop.step}; "
            f"checkpoint saved: {stop.checkpoint}\nresume with the same command and "
            f"ckpt_path={shlex.quote(str(stop.checkpoint))}",
            file=sys.stderr,
        )
        raise SystemExit(stop.exit_code) from None
    except EvaluationInterrupted as stop:
        print(
            f"the final evaluation was interrupted by {signal.Signals(stop.signum).name}; the trained weights are "
            f"saved: {stop.checkpoint}\nevaluate them with python src/eval.py ckpt_path={shlex.quote(stop.checkpoint)}",
            file=sys.stderr,
        )
        raise SystemExit(stop.exit_code) from None
    except Exception as err:  # a user error, possibly wrapped by Hydra's instantiate: one line
        user = find_user_error(err)
        if user is None:
            raise
        message = user_error_message(user)
        RUN_LOG.error(message)
        if in_multirun():  # the job is recorded as failed and the sweep goes on
            record_failed_job(cfg.paths.output_dir, message)
            print(message, file=sys.stderr)
            return float("nan") if cfg.get("optimized_metric") else None  # Optuna records a failed trial
        raise SystemExit(message) from None
    metric = cfg.get("optimized_metric")
    return result.get(metric.split("/")[-1]) if metric and result else None


if __name__ == "__main__":
    main()
