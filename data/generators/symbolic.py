"""Symbolic / geometric tasks (VLMsAreBlind style) with answers computed from the geometry that was drawn.

Kinds (`kinds` in the config):
- `counting`: saturated shapes of several colours and kinds; "How many red triangles are there?" (number);
- `line_intersections`: two 3-point polylines (blue and red) over the same x positions; "How many times do they
  intersect?" (0, 1 or 2), counted from sign changes of their vertical difference at the three x positions;
- `touching_circles`: two circle outlines; "Are they touching or overlapping?" (Yes/No);
- `overlapping_circles`: 3-9 rings in an Olympic-like chain, each overlapping the next; "How many circles?" (number);
- `nested_squares`: 2-6 squares, each strictly inside the previous; "How many squares?" (number).

Everything is drawn whole, at least a few pixels from the border (nothing is cut off), without anti-aliasing, in exact
colours, with clear gaps where things must not touch and clear
overlaps where they must: ambiguous configurations (a tangent pair, a line crossing exactly at a vertex) are
rejected, because their answer would depend on rasterisation. That also lets oracle code (`data.oracle`) compute each
answer from the pixels, and tests check the drawn image against the stated answer independently of the geometry.

No tool is required for these (required ops empty); they exercise analysis code (colour masks, connected components)
and the no-tool variant.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from data.generators.base import Generator, GeneratorConfig, Sample

KINDS: tuple[str, ...] = ("counting", "line_intersections", "touching_circles", "overlapping_circles", "nested_squares")
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20), "green": (20, 160, 40), "blue": (20, 60, 220), "orange": (250, 140, 0),
    "purple": (140, 30, 190), "black": (20, 20, 20), "cyan": (0, 190, 210), "magenta": (230, 0, 170),
    "brown": (130, 80, 30), "olive": (130, 140, 0),
}
COUNT_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
LINE_COLOURS = {"blue": (0, 0, 255), "red": (255, 0, 0)}


class SymbolicConfig(GeneratorConfig):
    kinds: list[str] = Field(default_factory=lambda: list(KINDS))
    min_side: int = Field(448, ge=128)
    max_side: int = Field(768, ge=128)


def _colour_dist(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(np.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True))))


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    pts = []
    for k in range(10):
        rr = r if k % 2 == 0 else 0.45 * r
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


class SymbolicGenerator(Generator):
    name: ClassVar[str] = "symbolic"
    description: ClassVar[str] = "counting, line intersections, touching/overlapping circles, nested squares"
    Config = SymbolicConfig
    config: SymbolicConfig

    def __init__(self, config: SymbolicConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        for k in c.kinds:
            if k not in KINDS:
                raise ValueError(f"{self.name}: unknown kind {k!r}; valid: {', '.join(KINDS)}")
        if not c.kinds:
            raise ValueError(f"{self.name}: kinds must not be empty")
        if c.min_side > c.max_side:
            raise ValueError(f"{self.name}: min_side {c.min_side} > max_side {c.max_side}")

    def _size(self, rng: np.random.Generator) -> tuple[int, int]:
        c = self.config
        w = int(rng.integers(c.min_side, c.max_side + 1))
        h = int(rng.integers(c.min_side, c.max_side + 1))
        return w, h

    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        kind = self.config.kinds[int(rng.integers(len(self.config.kinds)))]
        s = getattr(self, f"_{kind}")(rng)
        s.metadata = {"task_type": self.name, "symbolic_kind": kind, **s.metadata}
        return s

    # ---- counting -------------------------------------------------------------------------------------------

    def _counting(self, rng: np.random.Generator) -> Sample:
        w, h = self._size(rng)
        names = list(PALETTE)
        tname = names[int(rng.integers(len(names)))]
        tcol = PALETTE[tname]
        tshape = COUNT_SHAPES[int(rng.integers(len(COUNT_SHAPES)))]
        others = [n for n in names if _colour_dist(PALETTE[n], tcol) > 150]
        n_target = int(rng.integers(1, 10))
        n_other = int(rng.integers(0, 11))
        img = Image.new("RGB", (w, h), (255, 255, 255))
        d = ImageDraw.Draw(img)
        placed: list[tuple[float, float, float]] = []
        boxes: list[list[int]] = []
        items = [(tshape, tname)] * n_target
        for _ in range(n_other):
            items.append((COUNT_SHAPES[int(rng.integers(len(COUNT_SHAPES)))], others[int(rng.integers(len(others)))]))
        order = rng.permutation(len(items))
        drawn_targets = 0
        for k in order:
            shape, cname = items[int(k)]
            for _try in range(200):
                r = float(rng.uniform(14, max(16, min(w, h) / 11)))
                cx, cy = float(rng.uniform(r + 4, w - r - 4)), float(rng.uniform(r + 4, h - r - 4))
                if all(math.hypot(cx - x, cy - y) > r + rr + 8 for x, y, rr in placed):
                    break
            else:
                raise RuntimeError("symbolic/counting: no room left for a shape (image too small for this many)")
            placed.append((cx, cy, r))
            col = PALETTE[cname]
            if shape == "circle":
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
            else:
                d.polygon(_polygon(shape, cx, cy, r), fill=col)
            if (shape, cname) == (tshape, tname):
                drawn_targets += 1
                boxes.append([int(cx - r), int(cy - r), int(math.ceil(cx + r)) + 1, int(math.ceil(cy + r)) + 1])
        assert drawn_targets == n_target
        q = f"How many {tname} {tshape}s are there in the image? Answer with a number."
        # Distractors never use the target colour or one near it (`others`), but they do use the target shape, so
        # neither the colour nor the shape alone names the targets in the question's words.
        return Sample(
            images=[img], question=q, answer=float(n_target), answer_type="number",
            evidence=[{"box": b, "image": 0, "label": f"{tname} {tshape}"} for b in boxes],
            metadata={"target_colour": tname, "target_rgb": list(tcol), "target_shape": tshape,
                      "distractors": n_other},
            debug={"placed": placed},
        )

    # ---- line intersections ---------------------------------------------------------------------------------

    def _line_intersections(self, rng: np.random.Generator) -> Sample:
        w, h = self._size(rng)
        lw = int(rng.integers(2, 6))
        want = int(rng.integers(0, 3))
        xs = [w * 0.1, w * 0.5, w * 0.9]
        margin = h * 0.1
        for _try in range(10_000):
            yb = rng.uniform(margin, h - margin, 3)
            yr = rng.uniform(margin, h - margin, 3)
            dd = yb - yr
            if np.min(np.abs(dd)) < 3 * lw + 12:
                continue
            crossings = int(np.sum(np.sign(dd[1:]) != np.sign(dd[:-1])))
            if crossings == want:
                break
        else:  # pragma: no cover - 10k tries always suffice
            raise RuntimeError("symbolic/line_intersections: could not draw the wanted number of crossings")
        img = Image.new("RGB", (w, h), (255, 255, 255))
        d = ImageDraw.Draw(img)
        order = ["blue", "red"] if rng.random() < 0.5 else ["red", "blue"]
        ys = {"blue": yb, "red": yr}
        for name in order:
            d.line(list(zip(xs, ys[name].tolist(), strict=True)), fill=LINE_COLOURS[name], width=lw)
        points = []
        for i in range(2):
            if np.sign(dd[i]) != np.sign(dd[i + 1]):
                t = dd[i] / (dd[i] - dd[i + 1])
                px = xs[i] + t * (xs[i + 1] - xs[i])
                py = yb[i] + t * (yb[i + 1] - yb[i])
                points.append((float(px), float(py)))
        half = max(12, 4 * lw)
        evidence = [{"box": [max(0, int(px - half)), max(0, int(py - half)), min(w, int(px + half)),
                             min(h, int(py + half))], "image": 0, "label": "intersection"} for px, py in points]
        q = "How many times do the blue and the red lines intersect? Answer with a number."
        return Sample(
            images=[img], question=q, answer=float(want), answer_type="number", evidence=evidence,
            metadata={"line_width": lw, "line_rgb": {k: list(v) for k, v in LINE_COLOURS.items()},
                      "x_positions": [float(x) for x in xs]},
            debug={"yb": yb, "yr": yr, "points": points},
        )

    # ---- touching circles -----------------------------------------------------------------------------------

    def _touching_circles(self, rng: np.random.Generator) -> Sample:
        w, h = self._size(rng)
        lw = int(rng.integers(2, 6))
        touching = bool(rng.random() < 0.5)
        for _try in range(10_000):
            r1 = float(rng.uniform(0.08, 0.22) * min(w, h))
            r2 = float(rng.uniform(0.08, 0.22) * min(w, h))
            if touching:
                lo = abs(r1 - r2) + 2 * lw + 6
                hi = r1 + r2 - 2 * lw - 4
            else:
                lo = r1 + r2 + max(8, 2 * lw + 6)
                hi = r1 + r2 + 0.6 * min(r1, r2)
            if hi <= lo:
                continue
            dist = float(rng.uniform(lo, hi))
            a = float(rng.uniform(0, 2 * math.pi))
            span_x = abs(dist * math.cos(a)) + r1 + r2
            span_y = abs(dist * math.sin(a)) + r1 + r2
            if span_x < w - 8 and span_y < h - 8:
                break
        else:  # pragma: no cover
            raise RuntimeError("symbolic/touching_circles: could not place the circles")
        # both circles whole, 4 px from every border: r1 <= cx1 <= w - r1 and r2 <= cx1 + dx <= w - r2 (same in y)
        dx, dy = dist * math.cos(a), dist * math.sin(a)
        cx1 = float(rng.uniform(max(r1, r2 - dx) + 4, min(w - r1, w - r2 - dx) - 4))
        cy1 = float(rng.uniform(max(r1, r2 - dy) + 4, min(h - r1, h - r2 - dy) - 4))
        cx2, cy2 = cx1 + dist * math.cos(a), cy1 + dist * math.sin(a)
        img = Image.new("RGB", (w, h), (255, 255, 255))
        d = ImageDraw.Draw(img)
        names = list(PALETTE)
        c1 = PALETTE[names[int(rng.integers(len(names)))]]
        c2 = c1 if rng.random() < 0.5 else PALETTE[names[int(rng.integers(len(names)))]]
        d.ellipse((cx1 - r1, cy1 - r1, cx1 + r1, cy1 + r1), outline=c1, width=lw)
        d.ellipse((cx2 - r2, cy2 - r2, cx2 + r2, cy2 + r2), outline=c2, width=lw)
        q = "Are the two circles touching or overlapping each other? Answer with Yes or No."
        return Sample(
            images=[img], question=q, answer="Yes" if touching else "No", answer_type="text",
            metadata={"line_width": lw, "gap": dist - r1 - r2},
            debug={"circles": [(cx1, cy1, r1), (cx2, cy2, r2)], "touching": touching},
        )

    # ---- overlapping circles (Olympic-like) -----------------------------------------------------------------

    def _overlapping_circles(self, rng: np.random.Generator) -> Sample:
        n = int(rng.integers(3, 10))
        lw = int(rng.integers(3, 7))
        rows = 1 if n <= 5 else 2
        per_row = math.ceil(n / rows)
        r = float(rng.uniform(34, 60))
        step = r * float(rng.uniform(1.35, 1.7))  # < 2r: neighbours overlap
        w = int(step * (per_row - 1) + (step / 2 if rows == 2 else 0) + 2 * r + 2 * lw + 40)  # row 2 is offset
        h = int((rows - 1) * r + 2 * r + 2 * lw + 40)
        img = Image.new("RGB", (w, h), (255, 255, 255))
        d = ImageDraw.Draw(img)
        names = [str(v) for v in rng.permutation(list(PALETTE))[:n]]
        centres = []
        for i in range(n):
            row = 0 if i < per_row else 1
            col = i if row == 0 else i - per_row
            cx = 20 + lw + r + col * step + (step / 2 if row == 1 else 0)
            cy = 20 + lw + r + row * r
            centres.append((cx, cy))
        for (cx, cy), name in zip(centres, names, strict=True):
            d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=PALETTE[name], width=lw)
        q = "How many circles are in the image? Answer with a number."
        return Sample(
            images=[img], question=q, answer=float(n), answer_type="number",
            metadata={"line_width": lw, "ring_colours": names},
            debug={"centres": centres, "radius": r},
        )

    # ---- nested squares -------------------------------------------------------------------------------------

    def _nested_squares(self, rng: np.random.Generator) -> Sample:
        w, h = self._size(rng)
        n = int(rng.integers(2, 7))
        lw = int(rng.integers(2, 5))
        side = float(rng.uniform(0.7, 0.95) * min(w, h))
        x1, y1 = float(rng.uniform(2, w - side - 2)), float(rng.uniform(2, h - side - 2))
        squares = []
        min_gap = lw + 6
        for _k in range(n):
            squares.append((x1, y1, side))
            room = side - 2 * (lw + min_gap)
            new_side = float(rng.uniform(0.55, 0.85) * side)
            new_side = min(new_side, room - 2 * lw)
            if new_side < 2 * lw + 8:
                break
            x1 = x1 + lw + min_gap + float(rng.uniform(0, max(0.0, room - new_side)))
            y1 = y1 + lw + min_gap + float(rng.uniform(0, max(0.0, room - new_side)))
            side = new_side
        n = len(squares)
        img = Image.new("RGB", (w, h), (255, 255, 255))
        d = ImageDraw.Draw(img)
        colour = PALETTE["black"] if rng.random() < 0.6 else list(PALETTE.values())[int(rng.integers(len(PALETTE)))]
        for sx, sy, ss in squares:
            d.rectangle((sx, sy, sx + ss, sy + ss), outline=colour, width=lw)
        q = "How many squares are in the image? Answer with a number."
        return Sample(
            images=[img], question=q, answer=float(n), answer_type="number",
            metadata={"line_width": lw},
            debug={"squares": squares},
        )
