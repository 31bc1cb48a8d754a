"""What the model sees of an image: the size after the Qwen-VL processor's resize, and whether a detail is legible.

Qwen2-VL / Qwen2.5-VL / Qwen3-VL processors resize every image so that both sides are multiples of the patch
factor (28 px for Qwen2/2.5-VL) and the pixel count lies within `[min_pixels, max_pixels]` (`smart_resize` below
is the processor's published rule). A detail that is 40 px tall in a 4000 px image is ~10 px tall at
`max_pixels=1003520` (1280 * 28 * 28, the usual training setting): that is what decides whether a task needs a crop,
and what an oracle trajectory may claim to see before it zooms.

`LEGIBLE_PX`: the glyph height (pixels after the resize) under which text is treated as unreadable without a crop.
"""

from __future__ import annotations

import math

DEFAULT_MAX_PIXELS = 1280 * 28 * 28  # 1003520
DEFAULT_MIN_PIXELS = 4 * 28 * 28
PATCH_FACTOR = 28
LEGIBLE_PX = 10.0


def smart_resize(height: int, width: int, *, factor: int = PATCH_FACTOR, min_pixels: int = DEFAULT_MIN_PIXELS,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) the Qwen-VL processor resizes an image to (its `smart_resize`)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def model_scale(size: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """How much an image of `size` (width, height) is scaled on its way into the model (< 1 shrinks)."""
    w, h = size
    h2, w2 = smart_resize(h, w, max_pixels=max_pixels)
    return min(w2 / w, h2 / h)


def seen_px(length_px: float, size: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """A length of `length_px` pixels in an image of `size`, measured after the processor's resize."""
    return float(length_px) * model_scale(size, max_pixels)


def legible(glyph_height_px: float, size: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> bool:
    """Whether text with glyphs `glyph_height_px` tall can be read in the image as the model receives it."""
    return seen_px(glyph_height_px, size, max_pixels) >= LEGIBLE_PX
