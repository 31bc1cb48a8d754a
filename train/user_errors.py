"""The one place that decides which exceptions are the user's mistake, and with which exit code.

Every `codevl` command runs inside `train.cli.main`, which catches exceptions and asks `user_error(exc)`:

- a user's mistake (a bad option, config, path, task file, image, run folder, ...) becomes one line
  `codevl <command>: <message>` on stderr and an exit code, with no traceback;
- anything else is a bug in our code and raises with its traceback.

Exit codes (the convention of every command, printed by `codevl --help`):

    0    success
    1    the run or the data failed: invalid rows, a corrupt image, a teacher that answered nothing, a failed run
    2    usage: a bad option, config, reward set or path (nothing was done)
    130  interrupted (Ctrl-C): what was already committed is kept, nothing half-written is left

Exceptions are matched by the qualified names of their classes (and base classes), so this module imports
nothing: lower packages (`data`, `rewards`, `rollout`, `sandbox`) define their own error types and never import
`train`. Commands may also raise `UsageError` or `RunFailed` themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

EXIT_CODES_HELP = """exit codes (every command):
  0    success
  1    the run or the data failed (invalid rows, a corrupt image, a teacher that answered nothing, ...)
  2    usage: a bad option, config, reward set or path; nothing was done
  130  interrupted (Ctrl-C): committed work is kept, nothing half-written is left"""


class UserError(Exception):
    """A mistake of the user's, reported as `codevl <command>: <message>` and `exit_code` (no traceback)."""

    exit_code = FAILED


class UsageError(UserError):
    """A bad option, path or combination of options, found before any work (exit code 2)."""

    exit_code = USAGE


class RunFailed(UserError):
    """The command ran but produced nothing usable (e.g. every teacher call failed) (exit code 1)."""

    exit_code = FAILED


# Qualified class name -> exit code. Matching walks the exception's MRO, so subclasses are covered.
USER_ERRORS: dict[str, int] = {
    # usage and configuration: nothing was done
    "train.config.errors.ConfigError": USAGE,
    "rewards.errors.RewardConfigError": USAGE,
    "data.loaders.base.LoaderError": USAGE,
    "data.curate.run.CurationError": USAGE,
    "builtins.FileNotFoundError": USAGE,
    "builtins.IsADirectoryError": USAGE,
    "builtins.NotADirectoryError": USAGE,
    "builtins.FileExistsError": USAGE,
    "builtins.PermissionError": USAGE,
    "rollout.engines.vllm_requests.VLLMUnavailable": USAGE,
    # the data or the run failed
    "data.task_file.TaskFileError": FAILED,
    "train.sft_dataset.SFTDataError": FAILED,
    "train.run_files.RunDirError": FAILED,
    "train.model.paths.ModelPathError": FAILED,  # as `codevl sft` / `codevl rl` have reported it from the start
    "train.rl.RLRunError": FAILED,
    "rewards.errors.RewardError": FAILED,
    "sandbox.errors.SandboxUnavailableError": FAILED,
    "data.fonts.FontUnavailableError": FAILED,
    "PIL.UnidentifiedImageError": FAILED,
    "PIL.Image.DecompressionBombError": FAILED,
}


@dataclass(frozen=True)
class Reported:
    """How a user error is reported: the message (without the `codevl <command>: ` prefix) and the exit code."""

    message: str
    exit_code: int


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def user_error(exc: BaseException) -> Reported | None:
    """How to report `exc` if it is a user's mistake (see USER_ERRORS), else None (a bug: let it raise)."""
    if isinstance(exc, UserError):
        return Reported(str(exc), exc.exit_code)
    code = next((USER_ERRORS[n] for n in map(_qualname, type(exc).__mro__) if n in USER_ERRORS), None)
    if code is None:
        return None
    return Reported(_message(exc), code)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        what = {IsADirectoryError: "is a directory, expected a file",
                NotADirectoryError: "is not a directory"}.get(type(exc), exc.strerror[0].lower() + exc.strerror[1:])
        return f"{os.fsdecode(exc.filename)}: {what}"
    if _qualname(type(exc)) == "PIL.Image.DecompressionBombError":
        return f"{exc} Downscale the image, or raise PIL.Image.MAX_IMAGE_PIXELS if it is trusted."
    return str(exc) or type(exc).__name__
