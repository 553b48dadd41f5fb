"""Glue between Hydra configs and Lightning objects."""

from __future__ import annotations

import csv
import logging
import os
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

#: the config nodes that define a trained network and its data; saved in every checkpoint
RUN_DEFINITION = ("data", "model", "method")


#: the suite's own log lines of a run (start, each validation, the result, errors): the run's log
#: file only, next to what Lightning logs; the console has them from rich already
RUN_LOG = logging.getLogger("ssltm.run")
_LIBRARY_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch")


def attach_run_log() -> None:
    """Send Lightning's messages and the suite's run log to the log file Hydra opened for this job
    (`<output>/<task_name>.log`): Lightning's loggers keep their own console handler and do not
    propagate, so without this the file stays empty. Idempotent; a multirun's next job switches to
    its own file."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    RUN_LOG.setLevel(logging.INFO)
    RUN_LOG.propagate = False
    for name in (RUN_LOG.name, *_LIBRARY_LOGGERS):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(old)
        for handler in files:
            logger.addHandler(handler)


def instantiate_list(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every node with a `_target_` in a config group such as `callbacks` or `logger`."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if isinstance(node, DictConfig) and "_target_" in node]


def instantiate_loggers(cfg: DictConfig | None) -> list[pl.loggers.Logger]:
    # W&B stays offline unless the user chose otherwise (WANDB_MODE=online after `wandb login`)
    os.environ.setdefault("WANDB_MODE", "offline")
    return instantiate_list(cfg)


def finish_loggers(loggers: list[pl.loggers.Logger]) -> None:
    """Close the W&B run of this job: otherwise the next job of a multirun (same process) would
    log into it."""
    for logger in loggers:
        if isinstance(logger, pl.loggers.WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


class RunConfigInCheckpoint(pl.Callback):
    """Stores the resolved data / model / method config in each checkpoint, so that
    `src/eval.py ckpt_path=...` rebuilds the network without the training command line."""

    def __init__(self, cfg: DictConfig) -> None:
        self.run_config = {
            key: OmegaConf.to_container(cfg[key], resolve=True) for key in RUN_DEFINITION if key in cfg
        }

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["ssltm_run_config"] = self.run_config


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is continued, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])  # appended rows keep its header


class ContinuedCSVLogger(pl.loggers.CSVLogger):
    """`csv/metrics.csv` that a resumed run (ckpt_path=last|auto) continues: the rows of the steps
    before the interruption stay. Steps between the last checkpoint and the interruption are
    logged again after the resume; `scripts/plot_run.py` keeps the later value of a step."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
