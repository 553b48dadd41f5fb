"""Checkpoints written atomically: a kill while saving never leaves a broken file behind.

Lightning's default writer truncates the target and then writes into it, so a process killed in
the middle (pre-emption, out of memory, Ctrl-C twice) destroys the previous `last.ckpt`.
`AtomicCheckpointIO` writes to a temporary file in the same folder, flushes it to disk and only
then renames it over the target; a rename within one file system is atomic, so the target is
always either the old checkpoint or the new one. The temporary file of a killed save is removed at
the next save of that checkpoint; a write that fails (a full disk) keeps the old file and says so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ssltm.errors import CheckpointWriteError

#: the prefix of the temporary files (a leftover one is from a save that was killed)
TEMP_PREFIX = ".saving-"


def _file_mode() -> int:
    """The permissions a newly created file gets here (0666 less the umask), as for every other
    output of a run; `mkstemp` alone would make checkpoints private (0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_leftovers(path: Path) -> list[Path]:
    """Delete the temporary files of earlier saves of `path` that were killed mid-write."""
    leftovers = list(path.parent.glob(f"{TEMP_PREFIX}{path.name}.*"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save(obj, path), replacing `path` only once the new file is complete. A failed write
    (a full disk) leaves the previous file as it was and raises CheckpointWriteError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except (OSError, RuntimeError) as err:
        Path(temp).unlink(missing_ok=True)
        # torch.save reports a failed write (a full disk) as a RuntimeError of its stream writer
        if isinstance(err, RuntimeError) and "writ" not in str(err).lower():
            raise
        kept = "the previous one is kept" if path.is_file() else "there was none before"
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[-1]
        raise CheckpointWriteError(f"could not write the checkpoint {path}: {reason}; {kept}") from err
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's TorchCheckpointIO with atomic local writes (remote paths keep Lightning's)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # s3://, gs://, ...: no rename there, Lightning's writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO.save_checkpoint got storage_options={storage_options}; it takes none")
        atomic_torch_save(checkpoint, path)
