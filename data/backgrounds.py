"""Backgrounds for synthetic images: varied, cheap to draw, and fully determined by a numpy Generator.

Two families:

- `background(rng, size, kind)`: what rendered text sits on in the orientation tasks (solid colours, gradients,
  smooth colour noise, stripes, checkers, paper grain, soft blobs), so the text is not always black on white;
- `cluttered_scene(rng, size, ...)`: the busy, high-resolution scenes that hide a tiny target in the visual-search
  tasks: a smooth colour field covered with hundreds of muted rectangles, ellipses, lines and grey text-like strokes.

Clutter only uses *muted* colours (low saturation) so that a saturated target stays unique and nameable ("the small
red star"), and never draws the shapes that targets use (see `data.generators.visual_search`).
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BACKGROUND_KINDS: tuple[str, ...] = ("solid", "gradient", "noise", "stripes", "checker", "paper", "blobs")

Colour = tuple[int, int, int]


def random_colour(rng: np.random.Generator, *, sat: tuple[float, float] = (0.0, 1.0),
                  val: tuple[float, float] = (0.0, 1.0)) -> Colour:
    h = rng.uniform(0, 1)
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def luminance(c: Colour) -> float:
    r, g, b = c
    return 0.299 * r + 0.587 * g + 0.114 * b


def contrasting_colour(rng: np.random.Generator, against: Colour, min_diff: float = 110.0) -> Colour:
    """A colour whose luminance differs from `against` by at least `min_diff` (readable text)."""
    for _ in range(64):
        c = random_colour(rng)
        if abs(luminance(c) - luminance(against)) >= min_diff:
            return c
    return (0, 0, 0) if luminance(against) > 127 else (255, 255, 255)


def smooth_field(rng: np.random.Generator, size: tuple[int, int], *, cells: int = 6,
                 lo: float = 0.0, hi: float = 255.0, saturation: float = 1.0) -> Image.Image:
    """A smooth RGB colour field: a few random cells upsampled bicubically to `size` (width, height).
    `saturation` < 1 pulls the cells' colours toward their grey (done on the cells, so it costs nothing)."""
    w, h = size
    gw = max(2, cells)
    gh = max(2, int(round(cells * h / max(w, 1))))
    low = rng.uniform(lo, hi, size=(gh, gw, 3))
    if saturation != 1.0:
        grey = low.mean(axis=2, keepdims=True)
        low = grey + (low - grey) * saturation
    return Image.fromarray(low.clip(0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)


def background(rng: np.random.Generator, size: tuple[int, int], kind: str | None = None) -> tuple[Image.Image, Colour]:
    """An RGB background of `size` and its dominant colour (for picking a readable text colour)."""
    w, h = size
    kind = kind or BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    base = random_colour(rng)
    if kind == "solid":
        return Image.new("RGB", size, base), base
    if kind == "gradient":
        other = random_colour(rng)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        line = (1 - t)[:, None] * np.array(base, np.float32) + t[:, None] * np.array(other, np.float32)
        if len(t) == w:
            arr = np.broadcast_to(line[None, :, :], (h, w, 3))
        else:
            arr = np.broadcast_to(line[:, None, :], (h, w, 3))
        mid = tuple(int(v) for v in line[len(line) // 2])
        worst = base if abs(luminance(base) - 127) < abs(luminance(other) - 127) else other
        return Image.fromarray(arr.astype(np.uint8)), (mid if abs(luminance(mid) - luminance(worst)) < 60 else worst)  # type: ignore[arg-type, return-value]
    if kind == "noise":
        lo = float(rng.uniform(0, 150))
        img = smooth_field(rng, size, cells=int(rng.integers(3, 10)), lo=lo, hi=lo + 100)
        return img, tuple(int(v) for v in np.asarray(img).reshape(-1, 3).mean(0))  # type: ignore[return-value]
    if kind == "stripes" or kind == "checker":
        other = tuple(int(v) for v in np.clip(np.array(base) + rng.integers(-40, 41, 3), 0, 255))  # type: ignore[assignment]
        period = int(rng.integers(8, 40))
        yy, xx = np.mgrid[0:h, 0:w]
        if kind == "stripes":
            sel = ((xx + yy) // period) % 2 == 0 if rng.random() < 0.5 else (yy // period) % 2 == 0
        else:
            sel = ((xx // period) + (yy // period)) % 2 == 0
        arr = np.where(sel[..., None], np.array(base, np.uint8), np.array(other, np.uint8))
        return Image.fromarray(arr.astype(np.uint8)), base
    if kind == "paper":
        tone = random_colour(rng, sat=(0.0, 0.2), val=(0.8, 1.0))
        grain = rng.normal(0, 6, size=(h, w, 1)).astype(np.float32)
        arr = np.clip(np.array(tone, np.float32)[None, None, :] + grain, 0, 255).astype(np.uint8)
        return Image.fromarray(arr), tone
    if kind == "blobs":
        img = Image.new("RGB", size, base)
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(4, 12))):
            r = int(rng.integers(max(4, min(w, h) // 10), max(6, min(w, h) // 3)))
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            c = tuple(int(v) for v in np.clip(np.array(base) + rng.integers(-45, 46, 3), 0, 255))
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
        return img.filter(ImageFilter.GaussianBlur(radius=max(2, min(w, h) // 40))), base
    raise ValueError(f"unknown background kind {kind!r}; valid kinds: {', '.join(BACKGROUND_KINDS)}")


def muted_colour(rng: np.random.Generator) -> Colour:
    """A low-saturation colour for clutter (never confusable with a saturated target colour)."""
    return random_colour(rng, sat=(0.0, 0.28), val=(0.15, 0.95))


def cluttered_scene(rng: np.random.Generator, size: tuple[int, int], *, density: float = 1.0) -> Image.Image:
    """A busy RGB scene of `size`: smooth muted colour field plus many muted rectangles, ellipses, lines and
    stroke clusters. `density` scales the number of items (about 250 per megapixel at 1.0)."""
    w, h = size
    img = smooth_field(rng, size, cells=int(rng.integers(4, 12)), lo=60, hi=200, saturation=0.3)
    d = ImageDraw.Draw(img)
    n = int(density * 250 * (w * h) / 1e6) + 20
    short = min(w, h)
    for _ in range(n):
        kind = rng.integers(5)
        c = muted_colour(rng)
        x, y = int(rng.integers(-short // 20, w)), int(rng.integers(-short // 20, h))
        s = int(rng.integers(max(6, short // 60), max(8, short // 6)))
        t = int(rng.integers(max(3, s // 4), max(4, s * 2)))
        if kind == 0:
            d.rectangle((x, y, x + s, y + t), fill=c)
        elif kind == 1:
            d.ellipse((x, y, x + s, y + t), fill=c)
        elif kind == 2:
            d.line((x, y, x + int(rng.integers(-s, s)), y + int(rng.integers(-s, s))), fill=c,
                   width=int(rng.integers(1, 5)))
        elif kind == 3:
            d.rectangle((x, y, x + s, y + t), outline=c, width=int(rng.integers(1, 4)))
        else:  # a cluster of short strokes, like unreadable writing
            for _k in range(int(rng.integers(3, 8))):
                xx = x + int(rng.integers(0, s))
                yy = y + int(rng.integers(0, max(2, t // 2)))
                d.line((xx, yy, xx + int(rng.integers(2, 8)), yy + int(rng.integers(-6, 7))), fill=c, width=1)
    return img
