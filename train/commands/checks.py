"""Checks of command-line inputs made before any work, raising `UsageError` / `UserError` with what to do.

Commands call these first, so that a bad option or path fails in a second, not after an hour of generation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from train.user_errors import UsageError, UserError


def at_least(value: float, low: float, name: str) -> None:
    """`value` >= `low`, else a UsageError naming the option (`--temperature -1`, `--max-turns 0`)."""
    if value < low:
        raise UsageError(f"{name} must be at least {low}, got {value}")


def not_blank(value: str, name: str) -> None:
    """A non-empty string option (`--question ""`)."""
    if not value.strip():
        raise UsageError(f"{name} is empty")


def input_file(path: str | Path, what: str) -> Path:
    """An existing file (not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {p} is a directory, expected a file")
    if not p.is_file():
        raise UsageError(f"{what} not found: {p}")
    return p


def output_file(path: str | Path, what: str) -> Path:
    """A file that can be written: not a directory, and its parent is not a file."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {p}: is a directory; give a file name")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{what} {p}: {parent} is a file, not a folder")
    return p


def output_dir(path: str | Path, what: str) -> Path:
    """A folder that can be created or written into: not an existing file, no file on the way."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {p}: is a file; give a folder")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{what} {p}: {parent} is a file, not a folder")
    return p


def image_files(paths: Iterable[str | Path], what: str = "image") -> list[Path]:
    """Every path is an image file that decodes completely (truncated, non-image and oversized files are
    reported by name with exit code 1)."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for path in paths:
        p = input_file(path, what)
        try:
            with Image.open(p) as im:
                im.load()
        except Image.DecompressionBombError as exc:
            raise UserError(f"{what} {p}: {exc} Downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS if it is "
                            "trusted") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise UserError(f"{what} {p}: not a readable image ({exc})") from None
        out.append(p)
    return out
