"""Callbacks that tests put into training runs through the config (`+callbacks.NAME._target_=...`)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch


class LossRecorder(pl.Callback):
    """Appends each training step's loss to a JSON-lines file (it survives an interrupted run)."""

    def __init__(self, file: str) -> None:
        self.file = Path(file)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        record = {"step": trainer.global_step, "loss": None if loss is None else float(loss)}
        with self.file.open("a") as f:
            f.write(json.dumps(record) + "\n")


class SignalAtStep(pl.Callback):
    """Sends `signal` to this process when training step `step` starts (as `kill` would)."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step, self.signum = step, getattr(signal, signal_name)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class NanInputs(pl.Callback):
    """Fills the labelled frames with NaN (so the loss is NaN) in training batches [start, stop)."""

    def __init__(self, start: int, stop: int = 10**9) -> None:
        self.start, self.stop, self.seen = start, stop, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.start <= self.seen < self.stop:
            batch["labelled"]["frames"].fill_(float("nan"))
        self.seen += 1


class SaveFinalState(pl.Callback):
    """Saves each rank's student, teacher and GCC memory at the end of training to `folder`."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_end(self, trainer, pl_module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


class CorruptFramesAtStep(pl.Callback):
    """Overwrites every frame image under `folder` with garbage before training step `step`: a
    data set damaged while a run trains on it."""

    def __init__(self, folder: str, step: int) -> None:
        self.folder, self.step = folder, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            for image in Path(self.folder).rglob("*.jpg"):
                image.write_bytes(b"not an image any more")


class SignalAtFinalEvaluation(pl.Callback):
    """Sends SIGTERM to this process when the evaluation of the final weights (trainer.validate
    after fit) starts its first batch."""

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.state.fn == "validate" and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)
