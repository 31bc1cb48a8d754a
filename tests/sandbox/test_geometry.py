"""The project's one orientation rule (`sandbox.geometry`): directions, inverses and box mapping, pinned against
PIL / NumPy / OpenCV pixels and hand-computed boxes. Every package (sandbox trace, rewards' code analysis, data
generators) calls this module, so these cases fix the convention for all of them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from sandbox import geometry as G
from sandbox.result import ORIENTATION_OPS

W, H = 6, 4  # a 6 x 4 (width x height) image
BOX = (1, 0, 3, 2)  # x1, y1, x2, y2 (exclusive): columns 1-2, rows 0-1

# Hand-computed: where BOX lands after each op, on the W x H image.
#   rotate90 (CCW, (x, y) -> (y, W - x)):  (y1, W - x2, y2, W - x1) = (0, 6-3, 2, 6-1) = (0, 3, 2, 5)
#   rotate270 (CW, (x, y) -> (H - y, x)):  (H - y2, x1, H - y1, x2) = (4-2, 1, 4-0, 3) = (2, 1, 4, 3)
#   rotate180 ((x, y) -> (W - x, H - y)):  (6-3, 4-2, 6-1, 4-0)                        = (3, 2, 5, 4)
#   flip_h    ((x, y) -> (W - x, y)):      (6-3, 0, 6-1, 2)                            = (3, 0, 5, 2)
#   flip_v    ((x, y) -> (x, H - y)):      (1, 4-2, 3, 4-0)                            = (1, 2, 3, 4)
EXPECTED_BOX = {"rotate90": (0, 3, 2, 5), "rotate270": (2, 1, 4, 3), "rotate180": (3, 2, 5, 4),
                "flip_h": (3, 0, 5, 2), "flip_v": (1, 2, 3, 4)}
# The library calls that mean each op (PIL rotate angles are counter-clockwise).
PIL_CALLS = {"rotate90": lambda im: im.rotate(90, expand=True), "rotate270": lambda im: im.rotate(-90, expand=True),
             "rotate180": lambda im: im.rotate(180), "flip_h": ImageOps.mirror, "flip_v": ImageOps.flip}
CV2_CALLS = {"rotate90": lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
             "rotate270": lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
             "rotate180": lambda a: cv2.rotate(a, cv2.ROTATE_180), "flip_h": lambda a: cv2.flip(a, 1),
             "flip_v": lambda a: cv2.flip(a, 0)}


def _mask(box: tuple[float, ...], w: int = W, h: int = H) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 255
    return m


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_pil_rotate_90_is_counter_clockwise() -> None:
    # A mark in the top-right corner (x=5, y=0) of a 6 x 4 image: a counter-clockwise quarter turn moves the top
    # edge to the left edge, so the mark lands in the top-left corner of the 4 x 6 result.
    a = np.zeros((H, W), np.uint8)
    a[0, 5] = 255
    turned = np.asarray(Image.fromarray(a).rotate(90, expand=True))
    assert turned.shape == (W, H) and turned[0, 0] == 255
    assert np.array_equal(G.apply_to_array(a, "rotate90"), turned)
    # The point (5.5, 0.5) (the mark's centre) maps forward to (0.5, 6 - 5.5) = (0.5, 0.5).
    assert G.apply(G.orientation_forward("rotate90", W, H), 5.5, 0.5) == (0.5, 0.5)


@pytest.mark.parametrize("op", ORIENTATION_OPS)
def test_box_mapping_is_hand_computed_and_matches_every_library(op: str) -> None:
    assert G.map_box(BOX, op, W, H) == tuple(float(v) for v in EXPECTED_BOX[op])
    mask = _mask(BOX)
    assert _bbox(np.asarray(PIL_CALLS[op](Image.fromarray(mask)))) == EXPECTED_BOX[op]
    assert _bbox(CV2_CALLS[op](mask)) == EXPECTED_BOX[op]
    assert _bbox(G.apply_to_array(mask, op)) == EXPECTED_BOX[op]
    assert G.output_size(op, W, H) == ((H, W) if op in ("rotate90", "rotate270") else (W, H))


@pytest.mark.parametrize("op", ORIENTATION_OPS)
def test_inverse_undoes_the_op_on_pixels_boxes_and_maps(op: str) -> None:
    # rotate90 <-> rotate270; rotate180, flip_h, flip_v undo themselves.
    expected = {"rotate90": "rotate270", "rotate270": "rotate90"}.get(op, op)
    assert G.inverse(op) == expected
    a = np.arange(W * H, dtype=np.uint8).reshape(H, W)
    assert np.array_equal(G.apply_to_array(G.apply_to_array(a, op), G.inverse(op)), a)
    w2, h2 = G.output_size(op, W, H)
    assert G.map_box(G.map_box(BOX, op, W, H), G.inverse(op), w2, h2) == tuple(float(v) for v in BOX)
    # child -> parent map of op, composed with the child -> parent map of its inverse on the child, is identity
    assert G.compose(G.orientation(op, W, H), G.orientation(G.inverse(op), w2, h2)) == G.IDENTITY


def test_pil_rotate_without_expand_turns_about_the_centre() -> None:
    # PIL rotate(90) on a 6 x 4 image without expand keeps the size: output (x', y') comes from the input point
    # (W/2 + H/2 - y', H/2 - W/2 + x') = (5 - y', x' - 1). The output pixel centre (2.5, 0.5) reads (4.5, 1.5).
    m = G.pil_rotate(W, H, 90)
    assert m == (0.0, -1.0, 5.0, 1.0, 0.0, -1.0)
    a = np.zeros((H, W), np.uint8)
    a[1, 4] = 255  # input pixel covering (4.5, 1.5)
    out = np.asarray(Image.fromarray(a).rotate(90))
    assert out.shape == (H, W) and out[0, 2] == 255
    # with expand, Pillow's matrix is the orientation rule's
    assert G.pil_rotate(W, H, 90, expand=True) == G.orientation("rotate90", W, H)
    assert G.pil_rotate(W, H, -90, expand=True) == G.orientation("rotate270", W, H)


def test_library_names_and_angles() -> None:
    assert G.angle_op(90) == "rotate90" and G.angle_op(-90) == "rotate270" and G.angle_op(450) == "rotate90"
    assert G.angle_op(360) is None and G.angle_op(45) == "rotate"
    assert [G.rot90_op(k) for k in (0, 1, 2, 3, -1)] == [None, "rotate90", "rotate180", "rotate270", "rotate270"]
    assert [G.cv2_flip_op(c) for c in (0, 1, -1)] == ["flip_v", "flip_h", "rotate180"]
    a = np.arange(W * H, dtype=np.uint8).reshape(H, W)
    for axes in ({0}, {1}, {0, 1}):  # np.flip over rows / columns / both is the named op's pixels
        op = G.array_flip_op(axes)
        assert op is not None and np.array_equal(np.flip(a, tuple(axes)), G.apply_to_array(a, op))
    assert G.array_flip_op({2}) is None  # the channel axis is not an orientation
    assert G.CV2_ROTATE_OPS["ROTATE_90_CLOCKWISE"] == "rotate270"
    assert G.PIL_TRANSPOSE_OPS["ROTATE_90"] == "rotate90"
    with pytest.raises(ValueError, match="valid ops: rotate90, rotate180, rotate270, flip_h, flip_v"):
        G.inverse("rotate45")
