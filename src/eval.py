"""Evaluate a checkpoint: python src/eval.py ckpt_path=PATH [data.split=val|test] [data.root=...] [data=...]

The network is rebuilt from the config stored in the checkpoint by `src/train.py`; the data set
too, unless `data=...` is given. Writes `metrics.json` (mIoU, mVC8, mVC16, per-class IoU) into the
run's output folder and prints a table.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

import ssltm  # noqa: F401  (registers config resolvers)
from ssltm.errors import CheckpointError, ConfigError, find_user_error, user_error_message
from ssltm.runs.checkpoints import load_checkpoint, restore_method, stored_run_config
from ssltm.runs.lightning import RUN_DEFINITION, RUN_LOG, attach_run_log, finish_loggers, instantiate_loggers
from ssltm.runs.run_folder import run_records
from ssltm.runs.reporting import print_result, write_metrics


def changed_config(stored: dict, given: DictConfig, key: str) -> DictConfig:
    """The stored config of `key` with the values given on the command line; null ones (the
    defaults of conf/eval.yaml) change nothing. `data.root` also moves the source, which the
    stored, resolved config names by its own path."""
    given = {k: v for k, v in OmegaConf.to_container(given).items() if v is not None}
    merged = OmegaConf.merge(stored, given)
    if key == "data" and "root" in given:
        source = merged.get("source") or {}
        if "root" not in source:
            raise ConfigError(f"data.root: the checkpoint's data ({source.get('_target_', '?')}) is not read from a folder")
        merged.source.root = given["root"]
    return merged


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """Evaluate `cfg.ckpt_path` on `cfg.data.split`; returns the result and the objects."""
    output_dir = Path(cfg.paths.output_dir)
    records = run_records(output_dir)
    if records:  # never replace a training run's metrics.json (nor an earlier evaluation's)
        raise ConfigError(f"hydra.run.dir: {output_dir} already holds a run ({records[0]}); src/eval.py writes "
                          "into a folder of its own: leave hydra.run.dir out, or name a new folder")
    attach_run_log()
    RUN_LOG.info("evaluating %s on split %s into %s", cfg.ckpt_path, cfg.data.split, output_dir)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    stored = stored_run_config(checkpoint, cfg.ckpt_path, allow=cfg.get("allow_targets") or ())
    with open_dict(cfg):
        for key in RUN_DEFINITION:
            given = cfg.get(key)
            if given is None:  # not given on the command line: as trained
                cfg[key] = stored[key]
            elif "_target_" not in given:  # only some keys (data.split=test): change the stored config
                cfg[key] = changed_config(stored[key], given, key)
        if cfg.get("inference") is not None:  # inference=slide on the command line
            cfg.method.inference = cfg.inference
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    if datamodule.info.num_classes != cfg.model.num_classes:
        raise CheckpointError(
            f"the checkpoint predicts {cfg.model.num_classes} classes but data "
            f"{datamodule.info.name!r} has {datamodule.info.num_classes}"
        )
    method = restore_method(cfg, checkpoint, cfg.ckpt_path)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[])
    trainer.validate(method, datamodule=datamodule, verbose=False)
    finish_loggers(loggers)
    result = method.last_eval
    names = result["class_names"]
    path = write_metrics(
        output_dir / "metrics.json", result, names, checkpoint=str(cfg.ckpt_path), split=cfg.data.split
    )
    RUN_LOG.info("%s: mIoU %.2f, mVC_8 %.2f, mVC_16 %.2f; %s", cfg.data.split, 100 * result["mIoU"],
                 100 * result["mVC8"], 100 * result["mVC16"], path)
    console = Console()
    print_result(result, names, title=f"{datamodule.info.name} {cfg.data.split}: {cfg.ckpt_path}", console=console)
    console.print(f"metrics: {path}")
    OmegaConf.save(cfg, output_dir / "eval_config.yaml", resolve=True)
    return result, dict(cfg=cfg, datamodule=datamodule, method=method, trainer=trainer)


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    attach_run_log()  # this job's log file gets the run's lines (and errors), the console only rich's
    try:
        run(cfg)
    except Exception as err:  # a user error, possibly wrapped by Hydra's instantiate: one line
        user = find_user_error(err)
        if user is None:
            raise
        RUN_LOG.error(user_error_message(user))
        raise SystemExit(user_error_message(user)) from None


if __name__ == "__main__":
    main()
