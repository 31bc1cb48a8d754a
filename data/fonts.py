"""Fonts for rendered text, the same on every machine.

Generators draw text with fonts that ship with the project's own dependencies, so output depends only on package
versions, never on which system fonts a machine happens to have: the font inside Pillow
(`ImageFont.load_default(size=...)`, a scalable TrueType font since Pillow 10.1) and the open fonts that matplotlib
bundles (DejaVu Sans / Serif / Mono in several weights and STIX, under their own free licences, found in
matplotlib's `mpl-data/fonts/ttf` without importing matplotlib). `get_font(size, choice=k)` cycles through them.
Users who want other typefaces pass font files explicitly (`font_files` in a generator's config); system fonts are
never looked up implicitly.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BUNDLED_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
)
BUILTIN = "pillow-builtin"


class FontUnavailableError(RuntimeError):
    """Pillow was built without FreeType: scalable text cannot be rendered."""


@functools.lru_cache(maxsize=512)
def _builtin(size: int) -> Any:
    from PIL import ImageFont

    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise FontUnavailableError(
            "this Pillow has no FreeType support, so its built-in font cannot be scaled; install a Pillow wheel from "
            "PyPI (they bundle FreeType) or build Pillow with FreeType")
    return font


@functools.lru_cache(maxsize=512)
def _from_file(path: str, size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size=size)
    except OSError as exc:
        raise FontUnavailableError(f"font file {path} cannot be loaded: {exc}") from exc


@functools.lru_cache(maxsize=1)
def default_fonts() -> tuple[str, ...]:
    """The fonts used when a config names none: Pillow's built-in one, then matplotlib's bundled open fonts."""
    spec = importlib.util.find_spec("matplotlib")
    found: list[str] = []
    if spec is not None and spec.origin:
        ttf = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
        found = [str(ttf / name) for name in BUNDLED_FONTS if (ttf / name).exists()]
    return (BUILTIN, *found)


def _pick(font_files: Sequence[str], choice: int) -> str:
    files = list(font_files) or list(default_fonts())
    return str(files[choice % len(files)])


def get_font(size: int, font_files: Sequence[str] = (), choice: int = 0) -> Any:
    """A font of pixel `size`: `font_files[choice % n]`, or with no files the `choice`-th of `default_fonts()`
    (choice 0: Pillow's built-in font)."""
    size = max(6, int(size))
    name = _pick(font_files, choice)
    return _builtin(size) if name == BUILTIN else _from_file(name, size)


def font_name(font_files: Sequence[str] = (), choice: int = 0) -> str:
    """A readable name of the font `get_font` returns (for task metadata)."""
    name = _pick(font_files, choice)
    return name if name == BUILTIN or font_files else Path(name).stem
