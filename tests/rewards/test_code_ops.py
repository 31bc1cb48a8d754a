"""Static analysis of code (the fallback when a step has no operation trace).

Geometry is checked against real Pillow / NumPy / OpenCV: the input image encodes each pixel's own coordinates
(R = x, G = y, B = 255), the snippet runs, and the original-image box of the pixels it produced must equal the
box the analysis derived without running anything (rotated-then-cropped, flipped, resized chains).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from rewards.code_ops import analyse_code

W, H = 160, 100
NAMES = {"image_clue_0": 0}


def coordinate_image() -> Image.Image:
    ys, xs = np.mgrid[0:H, 0:W]
    arr = np.stack([xs, ys, np.full_like(xs, 255)], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def true_box(arr: np.ndarray) -> tuple[float, float, float, float]:
    """Original-image bounding box of the real (B = 255) pixels of a result."""
    a = np.asarray(arr)
    valid = a[..., 2] == 255
    xs, ys = a[..., 0][valid].astype(int), a[..., 1][valid].astype(int)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


CHAINS = [
    "out = image_clue_0.rotate(90, expand=True).crop((10, 20, 30, 60))",
    "out = image_clue_0.rotate(270, expand=True).crop((5, 5, 25, 45))",
    "out = image_clue_0.rotate(-90, expand=True).crop((5, 5, 25, 45))",
    "r = image_clue_0.rotate(180)\nout = r.crop((100, 10, 150, 50))",
    "out = image_clue_0.transpose(Image.FLIP_LEFT_RIGHT).crop((0, 0, 50, 20))",
    "out = image_clue_0.transpose(Image.Transpose.ROTATE_90).crop((0, 100, 30, 150))",
    "out = ImageOps.flip(image_clue_0).crop((10, 0, 40, 30))",
    "a = np.array(image_clue_0)\nout = np.rot90(a)[10:30, 5:25]",
    "a = np.asarray(image_clue_0)\nout = np.rot90(a, k=3)[10:30, 5:25]",
    "out = cv2.rotate(np.asarray(image_clue_0), cv2.ROTATE_90_CLOCKWISE)[0:40, 10:30]",
    "out = cv2.flip(np.array(image_clue_0), 1)[5:25, :40]",
    "out = np.flipud(np.array(image_clue_0))[0:20, 0:40]",
    "a = np.array(image_clue_0)[:, ::-1]\nout = a[10:20, 30:60]",
    "out = image_clue_0.crop((20, 10, 120, 70)).resize((200, 120), Image.NEAREST).crop((0, 0, 100, 60))",
    "c = image_clue_0.crop((40, 20, 140, 90))\nout = c.rotate(90, expand=True).crop((10, 10, 50, 60))",
    # PIL rotate without expand keeps the size and turns about the centre (corners fall off)
    "out = image_clue_0.rotate(90).crop((40, 20, 100, 80))",
    "out = image_clue_0.rotate(270).crop((60, 10, 90, 90))",
    # NumPy clamps slice bounds; negative bounds count from the end
    "out = np.array(image_clue_0)[-30:, 150:400]",
]


@pytest.mark.parametrize("code", CHAINS)
def test_crop_boxes_match_real_pixels(code: str) -> None:
    env = {"image_clue_0": coordinate_image(), "np": np, "cv2": cv2, "Image": Image, "ImageOps": ImageOps}
    exec(code, env)  # noqa: S102 - trusted test snippet: ground truth from the real libraries
    expected = true_box(np.asarray(env["out"]))
    analysis = analyse_code(code, NAMES, [(W, H)])
    crops = [o for o in analysis.ops if o.op == "crop"]
    assert crops and crops[-1].input_index == 0
    assert crops[-1].box == pytest.approx(expected), code


def test_shown_images_carry_their_lineage() -> None:
    code = "r = image_clue_0.rotate(90, expand=True)\nc = r.crop((10, 20, 30, 60))\nshow(c)\nplt.imshow(image_clue_0)"
    a = analyse_code(code, NAMES, [(W, H)])
    assert [o.op for o in a.ops] == ["rotate90", "crop"]
    # rotate90 (CCW, expand): original x = W - y', y = x'; y' in [20, 60] -> x in [100, 140]; x' in [10, 30] -> y
    assert a.shown[0] is not None and a.shown[0].region() == (100.0, 10.0, 140.0, 30.0)
    assert a.shown[0].ops == ("rotate90", "crop")
    assert a.shown[1] is not None and a.shown[1].region() == (0.0, 0.0, W, H) and a.shown[1].ops == ()


@pytest.mark.parametrize(("code", "ops"), [
    ("x = ImageOps.mirror(image_clue_0)", ["flip_h"]),
    ("x = cv2.flip(np.array(image_clue_0), -1)", ["rotate180"]),
    ("x = cv2.flip(np.array(image_clue_0), 0)", ["flip_v"]),
    ("x = np.flip(np.array(image_clue_0), axis=1)", ["flip_h"]),
    ("x = image_clue_0.rotate(45)", ["rotate"]),
    ("x = image_clue_0.rotate(360)", []),
    ("x = ImageEnhance.Contrast(image_clue_0).enhance(2.0)", ["enhance"]),
    ("x = image_clue_0.convert('L').resize((10, 10))", ["convert", "resize"]),
    ("g = cv2.cvtColor(np.array(image_clue_0), cv2.COLOR_RGB2GRAY)\n_, t = cv2.threshold(g, 127, 255, 0)",
     ["convert", "threshold"]),
    ("items = [1, 2, 3][0:2]\nprint(items[::-1])", []),  # slicing a list is not an image op
    ("x = image_clue_0.crop(box)", ["crop"]),  # non-constant box: used, box unknown
    ("def f(im):\n    return im.rotate(90, expand=True)\ny = f(image_clue_0)", ["rotate90"]),
    ("ys = [image_clue_0.crop((i, 0, i + 5, 5)) for i in range(3)]", ["crop"]),  # found by the sweep
    ("for k in (1, 2):\n    z = np.rot90(np.array(image_clue_0), k)", ["rotate"]),
    ("x = image_clue_0.rotate(90 if True else 0)", ["rotate"]),
])
def test_op_detection(code: str, ops: list[str]) -> None:
    assert [o.op for o in analyse_code(code, NAMES, [(W, H)]).ops] == ops


def test_unparseable_code_uses_nothing() -> None:
    a = analyse_code("x = image_clue_0.crop((0, 0, 5, 5)", NAMES, [(W, H)])
    assert not a.parsed and a.ops == [] and a.shown == []


def test_without_sizes_ops_are_found_but_geometry_is_not_followed() -> None:
    a = analyse_code("out = image_clue_0.rotate(90, expand=True).crop((10, 20, 30, 60))", NAMES, None)
    assert [(o.op, o.box) for o in a.ops] == [("rotate90", None), ("crop", None)]
    # a plain crop of the input needs no size: identity map
    a = analyse_code("out = image_clue_0.crop((10, 20, 30, 60))", NAMES, None)
    assert a.ops[0].box == (10, 20, 30, 60)


def test_op_lines_allow_cutting_at_an_error() -> None:
    a = analyse_code("a = image_clue_0.rotate(90, expand=True)\nraise ValueError()\nb = a.crop((0, 0, 4, 4))", NAMES)
    assert a.op_names(before_line=2) == {"rotate90"} and a.op_names() == {"rotate90", "crop"}
