"""Backgrounds for synthetic images: varied, cheap to draw, and fully determined by a numpy Generator.

Two families:

- `background(rng, size, kind)`: what rendered text sits on in the orientation tasks (solid colours, gradients,
  smooth colour noise, stripes, checkers, paper grain, soft blobs), so the text is not always black on white;
- `cluttered_scene(rng, size, style=...)`: the busy, high-resolution scenes that hide a tiny target in the
  visual-search tasks, in several styles (`CLUTTER_STYLES`): `shapes` (a smooth colour field covered with hundreds of
  muted rectangles, ellipses, lines and grey text-like strokes), `blocks` (shelves of boxes and cartons with
  label-like strokes, like a market or a warehouse), `texture` (foliage-like speckle and twigs over soft patches),
  `landscape` (sky above, ground below with a horizon, trees and buildings standing on it, clutter on the ground:
  a scene with a real up direction, so a rotation or flip of it can be seen at any resolution).

Clutter only uses *muted* colours (low saturation) so that a saturated target stays unique and nameable ("the small
red star"), and never draws the shapes that targets use (see `data.generators.visual_search`).
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BACKGROUND_KINDS: tuple[str, ...] = ("solid", "gradient", "noise", "stripes", "checker", "paper", "blobs")
CLUTTER_STYLES: tuple[str, ...] = ("shapes", "blocks", "texture", "landscape")

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


def cluttered_scene(rng: np.random.Generator, size: tuple[int, int], *, density: float = 1.0,
                    style: str = "shapes") -> Image.Image:
    """A busy RGB scene of `size` in `style` (see the module docstring). `density` scales the number of items
    (about 250 per megapixel at 1.0)."""
    if style not in CLUTTER_STYLES:
        raise ValueError(f"unknown clutter style {style!r}; valid styles: {', '.join(CLUTTER_STYLES)}")
    w, h = size
    n = int(density * 250 * (w * h) / 1e6) + 20
    if style == "blocks":
        return _blocks(rng, size, n)
    if style == "texture":
        return _texture(rng, size, n)
    if style == "landscape":
        return _landscape(rng, size, n)
    img = smooth_field(rng, size, cells=int(rng.integers(4, 12)), lo=60, hi=200, saturation=0.3)
    _shapes(ImageDraw.Draw(img), rng, (0, 0, w, h), n)
    return img


def _shapes(d: ImageDraw.ImageDraw, rng: np.random.Generator, area: tuple[int, int, int, int], n: int) -> None:
    """`n` muted rectangles, ellipses, lines, outlines and stroke clusters inside `area` (x1, y1, x2, y2)."""
    ax1, ay1, ax2, ay2 = area
    short = max(1, min(ax2 - ax1, ay2 - ay1))
    for _ in range(n):
        kind = rng.integers(5)
        c = muted_colour(rng)
        x, y = int(rng.integers(ax1 - short // 20, ax2)), int(rng.integers(ay1 - short // 20, ay2))
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


def _blocks(rng: np.random.Generator, size: tuple[int, int], n: int) -> Image.Image:
    """Shelves of boxes: rows of muted rectangles of varied widths, each with a few label-like grey strokes."""
    w, h = size
    img = Image.new("RGB", size, muted_colour(rng))
    d = ImageDraw.Draw(img)
    y = 0
    while y < h:
        row_h = int(rng.integers(max(12, h // 40), max(14, h // 14)))
        d.rectangle((0, y + row_h - 4, w, y + row_h), fill=muted_colour(rng))  # the shelf board
        x = int(rng.integers(-20, 10))
        while x < w:
            bw = int(rng.integers(max(8, row_h // 3), max(10, row_h * 2)))
            bh = int(rng.integers(max(6, row_h // 3), max(8, row_h - 4)))
            c = muted_colour(rng)
            d.rectangle((x, y + row_h - 4 - bh, x + bw - 2, y + row_h - 4), fill=c, outline=muted_colour(rng))
            for _k in range(int(rng.integers(0, 4))):  # label strokes
                lx = x + int(rng.integers(0, max(1, bw - 6)))
                ly = y + row_h - 4 - int(rng.integers(2, max(3, bh)))
                d.line((lx, ly, lx + int(rng.integers(3, max(4, bw // 2))), ly), fill=muted_colour(rng), width=1)
            x += bw
        y += row_h
    return img


def _texture(rng: np.random.Generator, size: tuple[int, int], n: int) -> Image.Image:
    """Foliage-like texture: soft patches, dense small speckles and twigs, all muted."""
    w, h = size
    img = smooth_field(rng, size, cells=int(rng.integers(6, 16)), lo=60, hi=190, saturation=0.3)
    d = ImageDraw.Draw(img)
    for _ in range(3 * n):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(2, max(3, min(w, h) // 150 + 4)))
        d.ellipse((x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5))), fill=muted_colour(rng))
    for _ in range(n // 2):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        pts = [(x, y)]
        for _k in range(int(rng.integers(2, 6))):
            x += int(rng.integers(-40, 41))
            y += int(rng.integers(-40, 41))
            pts.append((x, y))
        d.line(pts, fill=muted_colour(rng), width=int(rng.integers(1, 4)))
    return img


def _landscape(rng: np.random.Generator, size: tuple[int, int], n: int) -> Image.Image:
    """Sky (light, bluish, brighter towards the horizon) above a ground field; trees and houses stand on the
    horizon; clutter only on the ground."""
    w, h = size
    horizon = int(h * float(rng.uniform(0.3, 0.5)))
    img = smooth_field(rng, size, cells=int(rng.integers(4, 10)), lo=60, hi=170, saturation=0.3)
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    top = np.array([140, 170, 210], np.float32) + rng.uniform(-10, 10, 3)  # light blue, never saturated
    low = np.array([205, 220, 235], np.float32) + rng.uniform(-8, 8, 3)
    sky = ((1 - t) * top + t * low).clip(0, 255).astype(np.uint8)
    img.paste(Image.fromarray(np.broadcast_to(sky[:, None, :], (horizon, w, 3)).copy()), (0, 0))
    d = ImageDraw.Draw(img)
    x = int(rng.integers(0, max(1, w // 20)))
    while x < w:  # things standing on the horizon
        kind = int(rng.integers(3))
        s = int(rng.integers(max(10, h // 25), max(12, h // 7)))
        if kind == 0:  # a tree: trunk and crown
            d.rectangle((x + s // 3, horizon - s, x + s // 2, horizon), fill=(90, 70, 50))
            d.ellipse((x, horizon - 2 * s, x + s, horizon - s // 2), fill=muted_colour(rng))
        elif kind == 1:  # a house: walls and a roof
            d.rectangle((x, horizon - s, x + s, horizon), fill=muted_colour(rng))
            d.polygon([(x - s // 6, horizon - s), (x + s // 2, horizon - int(1.6 * s)), (x + s + s // 6, horizon - s)],
                      fill=muted_colour(rng))
        else:  # a pole
            d.rectangle((x, horizon - 2 * s, x + max(2, s // 10), horizon), fill=muted_colour(rng))
        x += s + int(rng.integers(s // 2, 3 * s))
    _shapes(d, rng, (0, horizon + 2, w, h), max(10, int(n * (h - horizon) / h)))
    return img
