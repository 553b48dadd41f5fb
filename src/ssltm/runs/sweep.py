"""Multiruns that outlive a failed job: a job that stops on a user error (a bad file, an option
that cannot work) writes its one-line message to `<job folder>/error.txt` and ends, and the sweep
goes on with the next job; at the end `FailedJobsReport` lists the failed jobs and exits 1, so a
sweep with failures never looks like a clean one. `scripts/aggregate.py` lists them too."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ERROR_FILE = "error.txt"


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failed_job(output_dir: str | Path, message: str) -> Path:
    """Write a job's error message into its folder (read by FailedJobsReport and aggregate.py)."""
    path = Path(output_dir) / ERROR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message.rstrip("\n") + "\n")
    return path


def failed_jobs(sweep_dir: str | Path) -> list[tuple[Path, str]]:
    """(job folder, message) of every job of a sweep folder that recorded an error."""
    return [(p.parent, p.read_text().strip()) for p in sorted(Path(sweep_dir).glob(f"*/{ERROR_FILE}"))]


class FailedJobsReport(Callback):
    """Hydra callback: after a multirun, one line per failed job and exit status 1."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        failed = failed_jobs(config.hydra.sweep.dir)
        if not failed:
            return
        lines = [f"{len(failed)} job(s) of the sweep failed:"]
        lines += [f"  {folder}: {message}" for folder, message in failed]
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(1)
