"""A run's output folder: one training at a time, what counts as a run in it, what the suite wrote.

- `RunLock`: a training holds an exclusive lock (`flock`) on `<folder>/.run.lock` while it runs;
  a second training into the same folder refuses in one line naming the process that holds it,
  even when both start within the same second (Hydra's folder names count seconds). The lock goes
  with the process, so a killed run never leaves a stale one behind.
- `run_records`: the files that say a folder holds a run (checkpoints, the CSV log, metrics.json,
  method_stats.json), not only `last.ckpt`.
- `clear_run_outputs`: what `overwrite=true` removes: the files the suite writes, by name, and
  nothing else (a file of the user's in `csv/` or `panels/` stays).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ssltm.errors import ConfigError

LOCK_NAME = ".run.lock"
#: files a training writes, relative to its output folder (glob patterns)
SUITE_FILES = (
    "checkpoints/*.ckpt", "checkpoints/*.ckpt.tmp*", "csv/metrics.csv", "csv/hparams.yaml", "panels/*_step*.png",
    "metrics.json", "method_stats.json",
)
#: the ones whose presence means the folder holds a run
RUN_RECORDS = ("checkpoints/*.ckpt", "csv/metrics.csv", "metrics.json", "method_stats.json")


def run_records(folder: str | Path) -> list[Path]:
    """The files in `folder` that a training run wrote (empty: no run there)."""
    folder = Path(folder)
    return sorted(p for pattern in RUN_RECORDS for p in folder.glob(pattern) if p.is_file())


def clear_run_outputs(folder: str | Path) -> list[Path]:
    """Remove the files the suite writes into a run folder, and their folders once empty."""
    folder = Path(folder)
    removed = sorted(p for pattern in SUITE_FILES for p in folder.glob(pattern) if p.is_file())
    for path in removed:
        path.unlink()
    for sub in ("checkpoints", "csv", "panels"):
        try:
            (folder / sub).rmdir()  # only when empty
        except OSError:
            pass
    return removed


def process_rank() -> int:
    """0 for the one process of a run that takes the lock (alone, or global rank 0); above 0 for
    the others. Any rank variable above 0 counts: processes that Lightning starts inside one SLURM
    task inherit SLURM_PROCID=0 but get their own LOCAL_RANK."""
    values = (os.environ.get(name, "") for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"))
    return max((int(v) for v in values if v.isdigit()), default=0)


class RunLock:
    """`with RunLock(folder):` - hold `folder` for this training, or raise ConfigError."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        if process_rank() != 0:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"{self.folder} is in use by another training (process {holder}); wait for it to end, "
                "or train into another folder (hydra.run.dir=...)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
