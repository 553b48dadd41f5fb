"""Fitting one method: build the data module, model, method and trainer from the config, train,
and report the evaluation of the final weights (`metrics.json`, `method_stats.json`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from ssltm.errors import CheckpointError, ConfigError, DataError, user_error_message
from ssltm.runs.checkpoints import load_checkpoint
from ssltm.runs.config_checks import check_built, check_config
from ssltm.runs.lightning import (
    RUN_LOG,
    RunConfigInCheckpoint,
    attach_run_log,
    finish_loggers,
    instantiate_list,
    instantiate_loggers,
)
from ssltm.runs.performance import apply_performance
from ssltm.runs.reporting import print_result, write_metrics
from ssltm.runs.run_folder import RunLock
from ssltm.runs.resume import InterruptCheckpoint, RandomState, resolve_checkpoint
from ssltm.utils.diskstats import disk_usage, write_json


def save_final_checkpoint(trainer: pl.Trainer, path: Path) -> str | None:
    """Write the final state to `path` (`last.ckpt`) unless the last-checkpoint callback already
    saved it at this step; None when nothing is saved (fast_dev_run, no checkpoint callback)."""
    writers = [cb for cb in trainer.checkpoint_callbacks
               if Path(cb.dirpath or "") == path.parent and cb.filename == path.stem]
    if trainer.fast_dev_run or not writers:
        return None
    if not (path.is_file() and getattr(writers[0], "_last_global_step_saved", -1) == trainer.global_step):
        trainer.save_checkpoint(path)
    return str(path)


def check_writable(output_dir: Path) -> None:
    """The run's folder and its checkpoints/ take files: checked before training, not found out at
    the first save after an hour of it."""
    for folder in (output_dir, output_dir / "checkpoints"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as err:
            raise ConfigError(f"paths.output_dir: cannot write into {folder}: {err.strerror or err}") from None


def check_resumable(ckpt_path: str, method: pl.LightningModule, cfg: DictConfig) -> None:
    """The checkpoint to resume from fits the method this run builds: the same parameter names
    and shapes. Otherwise one line says what the checkpoint holds and what the run expects."""
    checkpoint = load_checkpoint(ckpt_path)
    theirs, ours = checkpoint["state_dict"], method.state_dict()
    missing, unexpected = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    resized = [k for k in sorted(set(ours) & set(theirs)) if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if not (missing or unexpected or resized):
        return
    stored = checkpoint.get("ssltm_run_config") or {}
    holds = _describe(stored.get("model"), stored.get("method"))
    expects = _describe(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.method, resolve=True))
    first = (f"{resized[0]} is {tuple(theirs[resized[0]].shape)} there, {tuple(ours[resized[0]].shape)} here"
             if resized else f"{len(missing)} parameter(s) missing (e.g. {missing[0]})" if missing
             else f"{len(unexpected)} parameter(s) unknown here (e.g. {unexpected[0]})")
    raise CheckpointError(f"ckpt_path: {ckpt_path} holds {holds}, but this run builds {expects}: {first}")


def _describe(model: dict | None, method: dict | None) -> str:
    if not model:
        return "a network of unknown config"
    name = str(model.get("_target_", "?")).rsplit(".", 1)[-1]
    backbone = (model.get("backbone") or {}).get("name", "?") if isinstance(model.get("backbone"), dict) else "?"
    trained = str((method or {}).get("_target_", "?")).rsplit(".", 1)[-1]
    width = f"C={model['channels']}, " if "channels" in model else ""
    return f"{name} ({backbone}, {width}{model.get('num_classes', '?')} classes) trained by {trained}"


def fit(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> tuple[dict, dict]:
    """Fit the method on the data module and report the evaluation of its FINAL weights (no
    checkpoint is chosen on the split that is reported). `checkpoints/last.ckpt` holds those
    weights. Also writes `method_stats.json` (wall time, bytes written to disk). `callbacks` are
    added to the configured ones (a benchmark's probes). The output folder is locked for the run
    (`run_folder.RunLock`): a second training into it refuses."""
    with RunLock(cfg.paths.output_dir):
        return _fit(cfg, callbacks)


def _fit(cfg: DictConfig, callbacks: list[pl.Callback] | None) -> tuple[dict, dict]:
    start = time.perf_counter()
    attach_run_log()
    RUN_LOG.info("training %s with %s (seed %s) into %s", cfg.model.get("_target_", "?").rsplit(".", 1)[-1],
                 cfg.method.get("_target_", "?").rsplit(".", 1)[-1], cfg.get("seed"), cfg.paths.output_dir)
    check_config(cfg)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.output_dir, cfg.get("overwrite", False))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    check_built(model, datamodule.info.num_classes, cfg.data.get("train_transform", {}).get("crop_size"))
    apply_performance(model, cfg.get("performance"))
    method = instantiate(cfg.method, model=model)
    if ckpt_path is not None:
        check_resumable(ckpt_path, method, cfg)
    check_writable(Path(cfg.paths.output_dir))
    datamodule.use_unlabelled = method.uses_unlabelled
    interrupt = InterruptCheckpoint()
    callbacks = [*instantiate_list(cfg.get("callbacks")), *(callbacks or []), RunConfigInCheckpoint(cfg),
                 RandomState(), interrupt]
    loggers = instantiate_loggers(cfg.get("logger"))
    if not loggers:  # logger=[]: nothing to record the learning rate into
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    output_dir = Path(cfg.paths.output_dir)
    try:
        try:
            trainer.fit(method, datamodule=datamodule, ckpt_path=ckpt_path)
        except DataError as err:
            if interrupt.saved_on_error is None:
                raise
            path, step = interrupt.saved_on_error
            raise DataError(f"{user_error_message(err).removeprefix('error: ')} (training stopped after step "
                            f"{step}; {path} saved: fix the file, then resume with ckpt_path=last)") from None
        final = save_final_checkpoint(trainer, output_dir / "checkpoints" / "last.ckpt")
        if not trainer.fast_dev_run and method.last_eval_step != trainer.global_step:
            try:
                trainer.validate(method, datamodule=datamodule, verbose=False)  # the final weights
            except DataError as err:
                if final is None:
                    raise
                raise DataError(f"{user_error_message(err).removeprefix('error: ')} (training finished; {final} "
                                f"saved: fix the file, then evaluate with python src/eval.py ckpt_path={final})") from None
    finally:
        finish_loggers(loggers)
    result = method.last_eval
    objects = dict(cfg=cfg, datamodule=datamodule, method=method, trainer=trainer)
    if trainer.global_rank != 0:  # the other processes of a multi-process run write nothing
        return result or {}, objects
    stats = {"method": type(method).__name__, "wall_seconds": time.perf_counter() - start,
             "disk_bytes": disk_usage(output_dir), "parameters": sum(p.numel() for p in model.parameters())}
    write_json(output_dir / "method_stats.json", stats)
    if result is None:  # no evaluation ran (e.g. limit_val_batches=0)
        return {}, objects
    names = result["class_names"]
    path = write_metrics(output_dir / "metrics.json", result, names, checkpoint=final, split=datamodule.split)
    RUN_LOG.info("%s (final weights, step %d): mIoU %.2f, mVC_8 %.2f, mVC_16 %.2f; %s", datamodule.split,
                 trainer.global_step, 100 * result["mIoU"], 100 * result["mVC8"], 100 * result["mVC16"], path)
    console = Console()
    print_result(result, names, title=f"{datamodule.split} (final weights, step {trainer.global_step})",
                 console=console)
    console.print(
        f"{datamodule.split} mIoU {100 * result['mIoU']:.2f}  mVC_8 {100 * result['mVC8']:.2f}  "
        f"mVC_16 {100 * result['mVC16']:.2f}\noutput folder: {output_dir}\nmetrics: {path}"
        + (f"\nfinal checkpoint: {final}" if final else ""),
        soft_wrap=True,
    )
    return result, objects
