"""The operation trace: op names and crop boxes mapped back to the input image, checked against the pixels.

The input image encodes each pixel's own coordinates (R = x % 256, G = y % 256, B = 16 * (x // 256) + y // 256),
so decoding a shown image's pixels says exactly which input pixels it shows; the traced region must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sandbox import CapturedImage, SandboxPool

W, H = 600, 400


def coord_image() -> Image.Image:
    y, x = np.mgrid[0:H, 0:W]
    arr = np.stack([x % 256, y % 256, 16 * (x // 256) + y // 256], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def shown_box(im: CapturedImage) -> tuple[int, int, int, int]:
    a = im.array.astype(int)
    xs = a[..., 0] + 256 * (a[..., 2] // 16)
    ys = a[..., 1] + 256 * (a[..., 2] % 16)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture(scope="module")
def traced(pool: SandboxPool):  # noqa: ANN201
    s = pool.sync_session(images={"image_clue_0": coord_image(), "image_clue_1": coord_image()})
    s.open()
    yield s
    s.close()


EXACT = {
    "pil crop": "show(image_clue_0.crop((100, 50, 300, 250)))",
    "pil rotate90 then crop": "show(image_clue_0.rotate(90, expand=True).crop((10, 20, 110, 220)))",
    "pil rotate270 crop": "show(image_clue_0.transpose(Image.Transpose.ROTATE_270).crop((30, 40, 130, 90)))",
    "pil flip then crop": "show(image_clue_0.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((0, 0, 50, 60)))",
    "pil transpose": "show(image_clue_0.transpose(Image.Transpose.TRANSPOSE).crop((5, 7, 55, 77)))",
    "pil transverse": "show(image_clue_0.transpose(Image.Transpose.TRANSVERSE).crop((5, 7, 55, 77)))",
    "pil rotate180": "show(image_clue_0.rotate(180).crop((0, 0, 100, 100)))",
    "crop of crop": "c = image_clue_0.crop((200, 100, 500, 350))\nshow(c.crop((10, 20, 110, 120)))",
    "numpy slice": "a = np.array(image_clue_0)\nshow(a[50:150, 100:300])",
    "numpy asarray slice": "show(np.asarray(image_clue_0)[10:20, 30:45])",
    "numpy rot90 slice": "a = np.array(image_clue_0)\nshow(np.rot90(a)[10:60, 20:80])",
    "numpy flips": "a = np.array(image_clue_0)\nshow(np.fliplr(a)[0:40, 0:40])\nshow(a[::-1][0:30, 100:130])",
    "numpy channel slice": "a = np.array(image_clue_0)\nshow(a[5:25, 7:37, :])",
    "cv2 rotate": "a = np.array(image_clue_0)\nshow(cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)[0:50, 0:70])",
    "cv2 flip": "a = np.array(image_clue_0)\nshow(cv2.flip(a, 0)[0:20, 0:20])",
    "fromarray of slice": "a = np.array(image_clue_0)\nshow(Image.fromarray(a[100:200, 300:400]).crop((10, 10, 60, 60)))",
    "second input": "show(image_clue_1.crop((500, 300, 600, 400)))",
}


@pytest.mark.parametrize("name", list(EXACT))
def test_regions_match_the_pixels_shown(traced, name: str) -> None:
    r = traced.run(EXACT[name])
    assert r.ok, r.error
    assert r.images
    for im in r.images:
        assert im.region is not None, f"{name}: no region traced"
        assert tuple(int(round(v)) for v in im.region.box) == shown_box(im), f"{name}: {im.region}"
        assert im.region.input_index == (1 if "second" in name else 0)


def test_op_names_follow_the_convention_and_boxes_are_in_original_coordinates(traced) -> None:
    r = traced.run("a = np.array(image_clue_0)\n"
                   "p = image_clue_0.rotate(90, expand=True)\n"
                   "n = np.rot90(a)\n"
                   "c = cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)\n"
                   "print(np.array_equal(np.array(p), n), np.array_equal(n, c))\n"
                   "x = p.crop((0, 0, 100, 50))")
    assert r.stdout == "True True\n"
    names = [(o.op, o.api) for o in r.ops if o.input_index == 0]
    assert ("rotate90", "PIL.Image.Image.rotate") in names
    assert ("rotate90", "numpy.rot90") in names and ("rotate90", "cv2.rotate") in names
    crop = next(o for o in r.ops if o.op == "crop")
    # the top-left 100x50 of the image rotated counter-clockwise is the input's right-most 50 columns, top 100 rows
    assert crop.box == (550.0, 0.0, 600.0, 100.0) and crop.input_index == 0
    r = traced.run("show(image_clue_0.transpose(Image.Transpose.FLIP_TOP_BOTTOM))\n"
                   "show(ImageOps.mirror(image_clue_0))\nshow(image_clue_0.transpose(Image.Transpose.ROTATE_270))")
    assert [o.op for o in r.ops] == ["flip_v", "flip_h", "rotate270"]
    assert [im.region.ops for im in r.images] == [["flip_v"], ["flip_h"], ["rotate270"]]  # type: ignore[union-attr]
    assert all(im.region.box == (0.0, 0.0, 600.0, 400.0) for im in r.images)  # type: ignore[union-attr]


def test_resize_and_enhance_keep_the_region_approximately(traced) -> None:
    r = traced.run("c = image_clue_0.crop((100, 100, 300, 200)).resize((400, 200), Image.NEAREST)\n"
                   "e = ImageEnhance.Contrast(c).enhance(1.5)\n"
                   "g = cv2.resize(np.array(image_clue_0)[0:100, 0:200], (50, 25), interpolation=cv2.INTER_NEAREST)\n"
                   "show(c)\nshow(e)\nshow(g)")
    assert r.ok
    c, e, g = r.images
    assert c.region and c.region.box == (100.0, 100.0, 300.0, 200.0) and c.region.ops == ["crop", "resize"]
    assert e.region and e.region.box == c.region.box and e.region.ops == ["crop", "resize", "enhance"]
    assert g.region and g.region.box == (0.0, 0.0, 200.0, 100.0) and g.region.ops == ["crop", "resize"]
    assert {"crop", "resize", "enhance"} <= r.ops_used()


def test_arbitrary_rotation_figures_and_untraced_images(traced) -> None:
    r = traced.run("r = image_clue_0.rotate(30, expand=True)\nshow(r)\n"
                   "plt.imshow(image_clue_0.crop((0, 0, 64, 32)))\nplt.show()\n"
                   "blank = Image.new('RGB', (50, 50))\nshow(blank.crop((0, 0, 10, 10)))")
    assert r.ok
    rot, fig, blank = r.images
    assert rot.region is not None and rot.region.ops == ["rotate"]
    x1, y1, x2, y2 = rot.region.box
    assert x1 < 0 and y1 < 0 and x2 > W and y2 > H  # the expanded canvas shows the whole input and more
    assert fig.source == "plt.show" and fig.region is not None and fig.region.box == (0.0, 0.0, 64.0, 32.0)
    assert blank.region is None
    untraced = [o for o in r.ops if o.input_index is None]
    assert [o.op for o in untraced] == ["crop"]


def test_views_left_in_variables_are_recorded_at_the_end_of_the_block(traced) -> None:
    r = traced.run("arr = np.array(image_clue_0)\npatch = arr[10:30, 40:90]\nm = float(patch.mean())")
    assert r.ok and not r.images
    assert [(o.op, o.box) for o in r.ops] == [("crop", (40.0, 10.0, 90.0, 30.0))]


def test_a_view_shown_as_the_last_expression_is_in_the_ops(traced) -> None:
    r = traced.run("arr = np.array(image_clue_0)\narr[10:30, 40:90]")
    assert r.ok and len(r.images) == 1 and r.images[0].region is not None
    assert [(o.op, o.box) for o in r.ops] == [("crop", (40.0, 10.0, 90.0, 30.0))]  # recorded once, not twice


def test_grey_conversions_record_their_mode(traced) -> None:
    # rewards tell a conversion to grey (an emergent tool in CodeVision's released heuristics) from one to RGB/BGR
    r = traced.run("a = np.array(image_clue_0)\nshow(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))\n"
                   "show(image_clue_0.convert('L'))\nshow(cv2.cvtColor(a, cv2.COLOR_RGB2BGR))")
    assert r.ok
    assert [(o.op, o.params.get("mode")) for o in r.ops if o.op == "convert"] == [("convert", "L"), ("convert", "L"),
                                                                                  ("convert", None)]
