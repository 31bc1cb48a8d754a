"""The project's one orientation rule, and affine maps from an image's pixel coordinates back to its input's.

Orientation ops (the names every package uses, `sandbox.result.ORIENTATION_OPS`):

    rotate90   a quarter turn counter-clockwise: PIL `img.rotate(90, expand=True)` / `Transpose.ROTATE_90`,
               `np.rot90(a, k=1)`, `cv2.ROTATE_90_COUNTERCLOCKWISE`. Point (x, y) of a W x H image -> (y, W - x).
    rotate270  a quarter turn clockwise: PIL `rotate(-90)` / `rotate(270)`, `np.rot90(a, k=3)`,
               `cv2.ROTATE_90_CLOCKWISE`. (x, y) -> (H - y, x).
    rotate180  half a turn. (x, y) -> (W - x, H - y).
    flip_h     mirror left-right: `ImageOps.mirror`, `Transpose.FLIP_LEFT_RIGHT`, `np.fliplr`, `cv2.flip(a, 1)`.
               (x, y) -> (W - x, y).
    flip_v     mirror top-bottom: `ImageOps.flip`, `Transpose.FLIP_TOP_BOTTOM`, `np.flipud`, `cv2.flip(a, 0)`.
               (x, y) -> (x, H - y).

`rotate90` and `rotate270` undo each other; the other three undo themselves (`inverse`). Coordinates are edge
coordinates (pixel (i, j) covers [j, j+1) x [i, i+1); boxes are (x1, y1, x2, y2) with x2/y2 exclusive), so a box
maps through an op exactly (`map_box`). This module is the only place that defines these meanings: the sandbox's
trace, the rewards' static code analysis and the data generators all call it.

An `Affine` `(a, b, c, d, e, f)` maps a point `(x, y)` of a derived image (edge coordinates: pixel (i, j) covers
[j, j+1) x [i, i+1)) to `(a*x + b*y + c, d*x + e*y + f)` in its parent. Composing the maps of a chain of crops,
flips, rotations and resizes gives the derived image's footprint in the original image, so a crop's box can be
reported in the original's pixel coordinates whatever came before it (sandbox.result's convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sandbox.result import ORIENTATION_OPS

Affine = tuple[float, float, float, float, float, float]
Box = tuple[float, float, float, float]

IDENTITY: Affine = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def compose(outer: Affine, inner: Affine) -> Affine:
    """`outer` after `inner`: child -> parent (`inner`) followed by parent -> original (`outer`)."""
    a1, b1, c1, d1, e1, f1 = outer
    a2, b2, c2, d2, e2, f2 = inner
    return (a1 * a2 + b1 * d2, a1 * b2 + b1 * e2, a1 * c2 + b1 * f2 + c1,
            d1 * a2 + e1 * d2, d1 * b2 + e1 * e2, d1 * c2 + e1 * f2 + f1)


def invert(m: Affine) -> Affine | None:
    """The inverse map (None when `m` is singular)."""
    a, b, c, d, e, f = m
    det = a * e - b * d
    if abs(det) < 1e-12:
        return None
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return (ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f))


def apply(m: Affine, x: float, y: float) -> tuple[float, float]:
    """`m` applied to the point (x, y)."""
    a, b, c, d, e, f = m
    return a * x + b * y + c, d * x + e * y + f


def footprint(m: Affine, width: float, height: float) -> Box:
    """Bounding box, in the parent/original, of a `width` x `height` image mapped by `m` (rounded to 1e-6)."""
    pts = [apply(m, x, y) for x, y in ((0, 0), (width, 0), (0, height), (width, height))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return tuple(round(v, 6) + 0.0 for v in (min(xs), min(ys), max(xs), max(ys)))  # type: ignore[return-value]


def map_box_through(m: Affine, box: Sequence[float]) -> Box:
    """Bounding box of `box`'s four corners mapped by `m` (exact: no rounding; -0.0 becomes 0.0)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    pts = [apply(m, x, y) for x, y in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs) + 0.0, min(ys) + 0.0, max(xs) + 0.0, max(ys) + 0.0)


def crop(left: float, top: float) -> Affine:
    """Child -> parent map of a crop whose top-left corner is (left, top) in the parent."""
    return (1.0, 0.0, float(left), 0.0, 1.0, float(top))


def scale(sx: float, sy: float, ox: float = 0.0, oy: float = 0.0) -> Affine:
    """Child -> parent map of a resize: one child pixel spans (sx, sy) parent pixels, offset (ox, oy)."""
    return (float(sx), 0.0, float(ox), 0.0, float(sy), float(oy))


_INVERSE = {"rotate90": "rotate270", "rotate270": "rotate90", "rotate180": "rotate180", "flip_h": "flip_h",
            "flip_v": "flip_v"}


def check_orientation_op(op: str) -> None:
    """Raise ValueError naming the valid ops when `op` is not one of the five orientation ops."""
    if op not in _INVERSE:
        raise ValueError(f"unknown orientation op {op!r}; valid ops: {', '.join(ORIENTATION_OPS)}")


def inverse(op: str) -> str:
    """The op that undoes `op`: rotate90 <-> rotate270; rotate180, flip_h and flip_v undo themselves."""
    check_orientation_op(op)
    return _INVERSE[op]


def output_size(op: str, width: float, height: float) -> tuple[float, float]:
    """(width, height) of a `width` x `height` image after orientation op `op` (quarter turns swap them)."""
    check_orientation_op(op)
    return (height, width) if op in ("rotate90", "rotate270") else (width, height)


def orientation(name: str, width: float, height: float) -> Affine:
    """Child -> parent map of a lossless orientation op applied to a `width` x `height` parent (the five ops plus
    `transpose` and `transverse`, PIL's names for the two diagonal mirrors)."""
    w, h = float(width), float(height)
    return {
        "flip_h": (-1.0, 0.0, w, 0.0, 1.0, 0.0),
        "flip_v": (1.0, 0.0, 0.0, 0.0, -1.0, h),
        "rotate180": (-1.0, 0.0, w, 0.0, -1.0, h),
        "rotate90": (0.0, -1.0, w, 1.0, 0.0, 0.0),  # counter-clockwise: parent's top-right becomes top-left
        "rotate270": (0.0, 1.0, 0.0, -1.0, 0.0, h),  # clockwise
        "transpose": (0.0, 1.0, 0.0, 1.0, 0.0, 0.0),
        "transverse": (0.0, -1.0, w, -1.0, 0.0, h),
    }[name]


def orientation_forward(name: str, width: float, height: float) -> Affine:
    """Parent -> child map of orientation op `name` on a `width` x `height` parent (the inverse of `orientation`)."""
    m = invert(orientation(name, width, height))
    assert m is not None  # the orientation maps are permutations of axes: never singular
    return tuple(v + 0.0 for v in m)  # type: ignore[return-value]


def map_box(box: Sequence[float], op: str, width: float, height: float) -> Box:
    """Where box `(x1, y1, x2, y2)` of a `width` x `height` image lands after orientation op `op`."""
    check_orientation_op(op)
    return map_box_through(orientation_forward(op, width, height), box)


def apply_to_array(array: Any, op: str) -> Any:
    """Orientation op `op` applied to an H x W (x C) NumPy array: a view (callers copy when they need to)."""
    import numpy as np

    check_orientation_op(op)
    if op == "flip_h":
        return array[:, ::-1]
    if op == "flip_v":
        return array[::-1]
    return np.rot90(array, k={"rotate90": 1, "rotate180": 2, "rotate270": 3}[op])


def pil_rotate(width: float, height: float, angle: float, expand: bool = False, center: Any = None,
               translate: Any = None) -> Affine:
    """Child -> parent map of PIL's `Image.rotate(angle, expand=..., center=..., translate=...)` on a `width` x
    `height` image: Pillow's own output -> input matrix (same arithmetic as Pillow 11-12; `angle` in degrees
    counter-clockwise). Without `expand` a quarter turn keeps the size and turns about the centre."""
    w, h = float(width), float(height)
    post = translate or (0, 0)
    cx, cy = center if center is not None else (w / 2, h / 2)
    rad = -math.radians(angle)
    m = [round(math.cos(rad), 15), round(math.sin(rad), 15), 0.0, round(-math.sin(rad), 15), round(math.cos(rad), 15), 0.0]

    def tr(x: float, y: float) -> tuple[float, float]:
        return m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]

    m[2], m[5] = tr(-cx - post[0], -cy - post[1])
    m[2] += cx
    m[5] += cy
    if expand:
        xs, ys = zip(*(tr(x, y) for x, y in ((0, 0), (w, 0), (w, h), (0, h))), strict=True)
        nw = math.ceil(max(xs)) - math.floor(min(xs))
        nh = math.ceil(max(ys)) - math.floor(min(ys))
        m[2], m[5] = tr(-(nw - w) / 2.0, -(nh - h) / 2.0)
    return tuple(v + 0.0 for v in m)  # type: ignore[return-value]


# How the libraries name the ops (the meaning of each library constant, in one table per library).
PIL_TRANSPOSE_OPS = {"FLIP_LEFT_RIGHT": "flip_h", "FLIP_TOP_BOTTOM": "flip_v", "ROTATE_90": "rotate90",
                     "ROTATE_180": "rotate180", "ROTATE_270": "rotate270", "TRANSPOSE": "transpose",
                     "TRANSVERSE": "transverse"}
PIL_TRANSPOSE_OF = {op: name for name, op in PIL_TRANSPOSE_OPS.items()}
CV2_ROTATE_OPS = {"ROTATE_90_COUNTERCLOCKWISE": "rotate90", "ROTATE_180": "rotate180",
                  "ROTATE_90_CLOCKWISE": "rotate270"}


def angle_op(angle: float) -> str | None:
    """The op of a rotation by `angle` degrees counter-clockwise (PIL's `rotate` sign): None for a multiple of
    360, `rotate90` / `rotate180` / `rotate270` for quarter turns, `rotate` for any other angle."""
    return {0.0: None, 90.0: "rotate90", 180.0: "rotate180", 270.0: "rotate270"}.get(float(angle) % 360.0, "rotate")


def rot90_op(k: int) -> str | None:
    """The op of `np.rot90(a, k)` (counter-clockwise quarter turns on axes (0, 1)); None for a multiple of 4."""
    return {0: None, 1: "rotate90", 2: "rotate180", 3: "rotate270"}[int(k) % 4]


def array_flip_op(axes: set[int]) -> str | None:
    """The op of reversing an H x W (x C) array along `axes` (NumPy `np.flip`, `a[::-1]`, `a[:, ::-1]`): axis 0
    (rows) mirrors top-bottom, axis 1 (columns) left-right, both a half turn; None when no spatial axis."""
    return {frozenset({0}): "flip_v", frozenset({1}): "flip_h", frozenset({0, 1}): "rotate180"}.get(
        frozenset(axes & {0, 1}))


def cv2_flip_op(code: int) -> str:
    """The op of `cv2.flip(a, code)`: 0 mirrors top-bottom, > 0 left-right, < 0 both (a half turn)."""
    c = int(code)
    return "flip_v" if c == 0 else ("flip_h" if c > 0 else "rotate180")


def orientation_name(m: Affine, tol: float = 1e-9) -> str | None:
    """The orientation op of a map's linear part (None: upright, possibly scaled); `rotate` for other angles."""
    a, b, _, d, e, _ = m
    if abs(b) < tol and abs(d) < tol:
        if a > 0 and e > 0:
            return None
        return {(True, False): "flip_h", (False, True): "flip_v", (True, True): "rotate180"}[(a < 0, e < 0)]
    if abs(a) < tol and abs(e) < tol:
        return {(True, False): "rotate90", (False, True): "rotate270", (False, False): "transpose",
                (True, True): "transverse"}[(b < 0, d < 0)]
    return "rotate"


def scale_of(m: Affine) -> tuple[float, float]:
    """How many parent pixels one child pixel spans along the child's x and y."""
    a, b, _, d, e, _ = m
    return math.hypot(a, d), math.hypot(b, e)
