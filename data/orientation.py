"""The five orientation ops as the project names them, on pixels and on boxes.

Names and directions follow `sandbox.result` (the contract every package shares); the geometry is the project's one
orientation rule, `sandbox.geometry`, which this module adapts to the generators' signatures. `rotate90` turns the
image 90 degrees counter-clockwise (PIL `img.rotate(90, expand=True)`, `np.rot90(a, k=1)`), `rotate270` 90 degrees
clockwise, `rotate180` half a turn, `flip_h` mirrors left-right, `flip_v` mirrors top-bottom.

A generator that transforms an upright image with op `t` lists `inverse(t)` as the task's required op: the op the
solver must apply to the image it is given. Boxes are `(x1, y1, x2, y2)` in pixels with x2/y2 exclusive, so a box
maps through an op exactly (`map_box`), and `apply_op` then `map_box` agree pixel for pixel (tests check both against
PIL's own rotate/transpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sandbox import geometry
from sandbox.result import ORIENTATION_OPS

Box = tuple[float, float, float, float]

# What a transform looks like to someone looking at the result (used in oracle texts and questions).
DESCRIPTION = {
    "rotate90": "rotated 90 degrees counter-clockwise",
    "rotate270": "rotated 90 degrees clockwise",
    "rotate180": "upside down (rotated 180 degrees)",
    "flip_h": "mirrored left to right",
    "flip_v": "mirrored top to bottom (flipped vertically)",
}


_check = geometry.check_orientation_op


def inverse(op: str) -> str:
    """The op that undoes `op` (rotate90 <-> rotate270; the others undo themselves)."""
    return geometry.inverse(op)


def apply_op(array: np.ndarray, op: str) -> np.ndarray:
    """`op` applied to an H x W (x C) array; returns a new contiguous array."""
    return np.ascontiguousarray(geometry.apply_to_array(array, op))


def apply_op_pil(image: Any, op: str) -> Any:
    """`op` applied to a PIL image (same pixels as `apply_op`, faster for big images)."""
    from PIL import Image

    _check(op)
    return image.transpose(getattr(Image.Transpose, geometry.PIL_TRANSPOSE_OF[op]))


def apply_ops(array: np.ndarray, ops: Sequence[str]) -> np.ndarray:
    """Apply orientation ops in order; other names (e.g. `crop`) are ignored."""
    for op in ops:
        if op in ORIENTATION_OPS:
            array = apply_op(array, op)
    return array


def output_size(size: tuple[int, int], op: str) -> tuple[int, int]:
    """(width, height) after `op`."""
    return geometry.output_size(op, *size)  # type: ignore[return-value]


def map_box(box: Sequence[float], op: str, size: tuple[int, int]) -> Box:
    """Where box `(x1, y1, x2, y2)` of an image of `size` (width, height) lands after `op`."""
    return geometry.map_box(box, op, *size)


def pil_code(op: str, var: str, style: int = 0) -> str:
    """A Python expression applying `op` to PIL image `var`, in one of a few idioms (`style` picks one), so that
    oracle code is not all written the same way."""
    _check(op)
    idioms = {
        "rotate90": [f"{var}.rotate(90, expand=True)", f"{var}.transpose(Image.Transpose.ROTATE_90)"],
        "rotate270": [f"{var}.rotate(-90, expand=True)", f"{var}.transpose(Image.Transpose.ROTATE_270)"],
        "rotate180": [f"{var}.rotate(180)", f"{var}.transpose(Image.Transpose.ROTATE_180)"],
        "flip_h": [f"ImageOps.mirror({var})", f"{var}.transpose(Image.Transpose.FLIP_LEFT_RIGHT)"],
        "flip_v": [f"ImageOps.flip({var})", f"{var}.transpose(Image.Transpose.FLIP_TOP_BOTTOM)"],
    }[op]
    return idioms[style % len(idioms)]


__all__ = ["DESCRIPTION", "ORIENTATION_OPS", "apply_op", "apply_op_pil", "apply_ops", "inverse", "map_box", "output_size", "pil_code"]
