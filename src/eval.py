"""Evaluate a checkpoint: python src/eval.py ckpt_path=PATH [data.split=val|test] [data.root=...] [data=...]

The network is rebuilt from the config stored in the checkpoint by `src/train.py`; the data set
too, unless `data=...` is given. Writes `metrics.json` (mIoU, mVC8, mVC16, per-class IoU) into the
run's output folder and prints a table.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SSLTM_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from rich.console import Console  # noqa: E402

import ssltm  # noqa: E402,F401  (registers config resolvers)
from ssltm.errors import USER_ERRORS, CheckpointError, user_error_message  # noqa: E402
from ssltm.utils.checkpoints import load_run_config  # noqa: E402
from ssltm.utils.lightning import RUN_DEFINITION, finish_loggers, instantiate_loggers  # noqa: E402
from ssltm.utils.reporting import print_result, write_metrics  # noqa: E402


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """Evaluate `cfg.ckpt_path` on `cfg.data.split`; returns the result and the objects."""
    stored = load_run_config(cfg.ckpt_path)
    with open_dict(cfg):
        for key in RUN_DEFINITION:
            given = cfg.get(key)
            if given is None:  # not given on the command line: as trained
                cfg[key] = stored[key]
            elif "_target_" not in given:  # only some keys (data.split=test): change the stored config
                cfg[key] = OmegaConf.merge(stored[key], given)
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
    method = instantiate(cfg.method, model=instantiate(cfg.model))
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[])
    trainer.validate(method, datamodule=datamodule, ckpt_path=cfg.ckpt_path, verbose=False)
    finish_loggers(loggers)
    result = method.last_eval
    names = result["class_names"]
    output_dir = Path(cfg.paths.output_dir)
    path = write_metrics(
        output_dir / "metrics.json", result, names, checkpoint=str(cfg.ckpt_path), split=cfg.data.split
    )
    console = Console()
    print_result(result, names, title=f"{datamodule.info.name} {cfg.data.split}: {cfg.ckpt_path}", console=console)
    console.print(f"metrics: {path}")
    OmegaConf.save(cfg, output_dir / "eval_config.yaml", resolve=True)
    return result, dict(cfg=cfg, datamodule=datamodule, method=method, trainer=trainer)


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except USER_ERRORS as err:
        raise SystemExit(user_error_message(err)) from None


if __name__ == "__main__":
    main()
