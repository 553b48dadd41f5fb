"""Errors caused by the user's input (data, checkpoints, options): the entry points print them as
one clear line instead of a traceback. Every layer raises them; this file imports nothing above."""

from __future__ import annotations


class DataError(ValueError):
    """A data set folder with a defect; the message names the offending files."""


class CheckpointError(ValueError):
    """A checkpoint that is missing or was not written by this suite's training."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (a full disk, no permission); the earlier file stays."""


class BackboneCheckpointError(ValueError):
    """A backbone checkpoint that is missing, unreadable or does not fit the architecture."""


class ConfigError(ValueError):
    """An option with a value that cannot work; the message names the option."""


class NonFiniteLossError(RuntimeError):
    """The training loss stayed NaN or infinite for `method.max_nonfinite_steps` steps in a row."""


class NonFiniteOutputError(RuntimeError):
    """The network's output holds NaN or infinite values (broken weights): never a silent score."""


USER_ERRORS = (DataError, BackboneCheckpointError, CheckpointError, CheckpointWriteError, ConfigError,
               NonFiniteLossError, NonFiniteOutputError)


def user_error_message(err: Exception) -> str:
    """The message of a user error; one raised in a DataLoader worker comes back wrapped in the
    worker's traceback, of which only the last line (the original message) is kept."""
    text = str(err).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return f"error: {text}"


def find_user_error(err: BaseException) -> BaseException | None:
    """The user error behind `err`: itself, or one it was raised from (Hydra's instantiate wraps a
    constructor's ConfigError in an InstantiationException); None when there is none."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, USER_ERRORS):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
