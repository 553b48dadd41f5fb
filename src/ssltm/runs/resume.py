"""Stopping and resuming a run exactly.

- `InterruptCheckpoint`: SIGTERM (pre-emption, `scancel`, a scheduler's time limit) or SIGINT
  (Ctrl-C) lets the current step finish, saves `checkpoints/last.ckpt` and stops the run with
  `TrainingInterrupted`; `src/train.py` then prints how to resume and exits. A second Ctrl-C
  interrupts at once.
- `RandomState`: the random generators (torch, CUDA, numpy, python) are stored in each checkpoint
  and put back just before the first training step after resuming, so dropout, drop-path and
  the strong augmentation draw what an uninterrupted run would draw.
Everything else that a resumed run needs is in the checkpoint already: the student, the teacher,
the EMA step and the GCC memory (module state), optimiser and scheduler (Lightning) and the
position in the data stream (the data module's state, see data/samplers.py).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from ssltm.errors import ConfigError, DataError
from ssltm.runs.run_folder import clear_run_outputs, run_records

HANDLED = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""

    def __init__(self, signum: int, checkpoint: str, step: int) -> None:
        self.signum, self.checkpoint, self.step = signum, checkpoint, step
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint {checkpoint}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for "ended by signal N"


class EvaluationInterrupted(Exception):
    """The final evaluation after training stopped on a signal; the final weights are saved."""

    def __init__(self, signum: int, checkpoint: str) -> None:
        self.signum, self.checkpoint = signum, checkpoint
        super().__init__(f"{signal.Signals(signum).name} during the final evaluation; checkpoint {checkpoint}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interrupted_checkpoint_path(trainer: pl.Trainer) -> Path:
    """Where the interrupted run's checkpoint goes: `last.ckpt` beside ModelCheckpoint's files."""
    folder = getattr(trainer.checkpoint_callback, "dirpath", None)
    return Path(folder or Path(trainer.default_root_dir) / "checkpoints") / "last.ckpt"


class InterruptCheckpoint(pl.Callback):
    """On SIGTERM / SIGINT: finish the step, save a checkpoint, stop with TrainingInterrupted.

    All processes of a multi-process run stop at the same step (the decision is all-reduced), as
    `trainer.save_checkpoint` needs every one of them.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        #: (checkpoint, step) saved when a data error stopped training
        self.saved_on_error: tuple[str, int] | None = None
        self.launcher = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without a checkpoint
        self.received = signum
        rank_zero_info(f"\n{signal.Signals(signum).name} received: saving a checkpoint after this step ...")
        if self.launcher is not None and hasattr(self.launcher, "kill"):
            self.launcher.kill(signum)  # pass it on to the other local processes (ddp)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.received = None
        self.launcher = trainer.strategy.launcher
        for signum in HANDLED:  # replaces Lightning's SIGTERM handler, which exits without saving
            self._previous[signum] = signal.signal(signum, self._handle)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_validation_start(self, trainer: pl.Trainer, pl_module) -> None:
        """The evaluation of the final weights (trainer.validate after fit, when last.ckpt is
        written): a signal stops it at once, with exit code 128 + N and a message."""
        if trainer.state.fn != "validate":
            return
        path = str(interrupted_checkpoint_path(trainer))

        def stop(signum: int, frame) -> None:
            raise EvaluationInterrupted(signum, path)

        for signum in HANDLED:
            self._previous.setdefault(signum, signal.signal(signum, stop))

    def on_validation_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_handlers()
        # a file that became unreadable while training, or a defect of a validation file found by
        # the validation within training: keep what was learnt, so that the run resumes once the
        # file is fixed (one process only: a save needs every process of a run)
        fitting = trainer.state.fn == "fit" and (trainer.training or trainer.validating or trainer.sanity_checking)
        if isinstance(exception, DataError) and fitting and trainer.world_size == 1 and trainer.global_step > 0:
            path = interrupted_checkpoint_path(trainer)
            trainer.save_checkpoint(path)
            self.saved_on_error = (str(path), trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        path = interrupted_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        raise TrainingInterrupted(self.received or signal.SIGTERM, str(path), trainer.global_step)


def capture_random_state() -> dict:
    """The generators' states as tensors and plain values (checkpoints load with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(pl.Callback):
    """Stores the random generators in each checkpoint; a resumed run gets them back right before
    its first training step (after the data loaders have started, which draw from them too)."""

    def __init__(self) -> None:
        self.pending: dict | None = None

    def state_dict(self) -> dict:
        return capture_random_state()

    def load_state_dict(self, state_dict: dict) -> None:
        self.pending = state_dict

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.pending is not None:
            restore_random_state(self.pending)
            self.pending = None


def resolve_checkpoint(ckpt_path: str | None, output_dir: str | Path, overwrite: bool = False) -> str | None:
    """`ckpt_path` of src/train.py -> the file to resume from, or None for a fresh start.

    None: a fresh run, in a folder that holds no earlier run (any of its records: checkpoints,
    the CSV log, metrics.json; `run_folder.run_records`), unless `overwrite` clears the files the
    suite wrote there first. `last`: this output folder's
    checkpoints/last.ckpt, which must exist.
    `auto`: the newest of that file and Lightning's SLURM requeue checkpoints (hpc_ckpt_N.ckpt)
    when there is one, else a fresh start (a requeued cluster job reruns its command in its own
    output folder). Anything else: a checkpoint file, which must exist.
    """
    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    if ckpt_path is None:
        records = run_records(output_dir)
        if records and not overwrite:
            how = "resume it with ckpt_path=last, " if last.is_file() else ""
            raise ConfigError(
                f"{output_dir} already holds a run ({records[0]}); {how}train into another folder "
                "(hydra.run.dir=...), or add overwrite=true to start over"
            )
        if overwrite:
            clear_run_outputs(output_dir)
        return None
    if ckpt_path == "auto":  # also Lightning's SLURM auto-requeue checkpoints (SIGUSR1): the newest
        found = [p for p in [last, *Path(output_dir).glob("hpc_ckpt_*.ckpt")] if p.is_file()]
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if ckpt_path == "last":
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path=last: there is no {last}. To resume a run, point at its folder "
                "(hydra.run.dir=<the run's output folder> ckpt_path=last) or at the file "
                "(ckpt_path=<folder>/checkpoints/last.ckpt)"
            )
        return str(last)
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path: no checkpoint file at {ckpt_path}")
    return str(ckpt_path)
