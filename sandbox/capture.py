"""Capturing the images a code block shows: `plt.show()` and open figures, `Image.show()`, `cv2.imshow()`, the
`show(x)` / `display(x)` helpers, and a last expression that is an image, an array or a figure.

Captured images become uint8 arrays (grey, RGB or RGBA; OpenCV's BGR converted to RGB), at most `max_images` per
block and `max_pixels` each (larger ones are downscaled, with a note), with their traced region when they derive
from an input image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from sandbox.result import ImageRegion
from sandbox.trace import TRACER


def _figure_types() -> tuple[type, ...]:
    import matplotlib.figure

    return (matplotlib.figure.Figure,)


def is_image_array(x: Any) -> bool:
    """An ndarray that can be shown as an image: H x W, or H x W x 1/3/4, numeric or bool, both sides >= 1."""
    if not isinstance(x, np.ndarray) or x.ndim not in (2, 3) or x.size == 0:
        return False
    if x.ndim == 3 and x.shape[2] not in (1, 3, 4):
        return False
    return x.dtype.kind in "biuf" and min(x.shape[:2]) >= 1


def is_showable(x: Any) -> bool:
    return isinstance(x, Image.Image) or is_image_array(x) or isinstance(x, _figure_types())


def array_to_uint8(x: np.ndarray) -> np.ndarray:
    """Pixels of an array as uint8: bool -> 0/255, floats in [0, 1] scaled by 255, everything else clipped."""
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.dtype == np.uint8:
        return x
    if x.dtype == bool:
        return x.astype(np.uint8) * 255
    if x.dtype.kind == "f":
        finite = np.nan_to_num(x, nan=0.0, posinf=255.0, neginf=0.0)
        if finite.size and float(finite.max()) <= 1.0 and float(finite.min()) >= 0.0:
            finite = finite * 255.0
        return np.clip(finite, 0, 255).astype(np.uint8)
    return np.clip(x, 0, 255).astype(np.uint8)


def pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode not in ("RGB", "RGBA", "L"):
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            a = np.asarray(im, dtype=np.float64)
            lo, hi = float(a.min()), float(a.max())
            return ((a - lo) / (hi - lo) * 255).astype(np.uint8) if hi > lo else np.zeros(a.shape, np.uint8)
        im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" and "transparency" in im.info else "RGB")
    # one packing pass and a zero-copy view: np.array(im) copies twice through __array_interface__, and tobytes()
    # packs in 64 KiB chunks that it then joins (a second copy)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[im.mode]
    flat = np.frombuffer(_packed_bytes(im, im.width * im.height * channels), dtype=np.uint8)
    return flat.reshape((im.height, im.width) if channels == 1 else (im.height, im.width, channels))


def _packed_bytes(im: Image.Image, nbytes: int) -> bytes:
    try:
        im.load()
        enc = Image._getencoder(im.mode, "raw", im.mode)
        enc.setimage(im.im, (0, 0, *im.size))
        _, err, data = enc.encode(nbytes + 1)
        if err == 1 and len(data) == nbytes:
            return data
    except Exception:  # noqa: BLE001 - a Pillow without this internal path: the public one
        pass
    return im.tobytes()


def figure_to_array(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[:, :, :3])


def figure_region(fig: Any) -> ImageRegion | None:
    """The region of the one traced image drawn in a figure (None when there are none or several)."""
    regions = [getattr(im, "_codevl_region", None) for ax in fig.axes for im in ax.get_images()]
    regions = [r for r in regions if r is not None]
    return regions[0] if len(regions) == 1 else None


@dataclass
class Captured:
    array: np.ndarray
    source: str
    region: ImageRegion | None


@dataclass
class Capture:
    """The images of the block being run."""

    max_images: int = 16
    max_pixels: int = 36_000_000
    images: list[Captured] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, obj: Any, source: str, *, bgr: bool = False) -> bool:
        """Capture `obj` (PIL image, array or figure). False when it is not an image."""
        region: ImageRegion | None = None
        if isinstance(obj, Image.Image):
            if len(self.images) >= self.max_images:
                self.dropped += 1
                return True
            arr = pil_to_array(obj)
            region = TRACER.region(obj, obj.width, obj.height)
        elif is_image_array(obj):
            if len(self.images) >= self.max_images:
                self.dropped += 1
                return True
            prov = TRACER.consume(obj, f"capture:{source}")
            arr = array_to_uint8(obj)
            if bgr and arr.ndim == 3:
                arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
            if prov is not None:
                region = TRACER.region(obj, obj.shape[1], obj.shape[0])
        elif isinstance(obj, _figure_types()):
            if len(self.images) >= self.max_images:
                self.dropped += 1
                return True
            arr = figure_to_array(obj)
            region = figure_region(obj)
        else:
            return False
        h, w = arr.shape[:2]
        if h * w > self.max_pixels:
            f = (self.max_pixels / (h * w)) ** 0.5
            nw, nh = max(1, int(w * f)), max(1, int(h * f))
            TRACER.enabled, was = False, TRACER.enabled
            try:
                arr = cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_AREA)
            finally:
                TRACER.enabled = was
            self.notes.append(f"image {len(self.images)} downscaled from {w}x{h} to {nw}x{nh} "
                              f"(max {self.max_pixels} pixels)")
        self.images.append(Captured(np.ascontiguousarray(arr), source, region))
        return True

    def add_open_figures(self, source: str) -> None:
        import matplotlib.pyplot as plt

        for num in plt.get_fignums():
            fig = plt.figure(num)
            try:
                self.add(fig, source)
            except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn is noted, not fatal
                self.notes.append(f"figure {num} could not be drawn: {type(exc).__name__}: {exc}")
            plt.close(fig)

    def finish(self) -> None:
        if self.dropped:
            self.notes.append(f"{self.dropped} more images were shown and dropped (max {self.max_images} per run)")


CURRENT = Capture()


def show(*objs: Any) -> None:
    """Display images (PIL images, arrays, figures, or lists of them) as results of this code block."""
    _show(objs, "show")


def display(*objs: Any) -> None:
    """Like `show`; anything that is not an image is printed."""
    _show(objs, "display")


def _show(objs: tuple[Any, ...], source: str) -> None:
    import matplotlib.pyplot as plt

    if not objs:
        CURRENT.add_open_figures(source)
        return
    for obj in objs:
        items = obj if isinstance(obj, (list, tuple)) and obj and all(is_showable(o) for o in obj) else [obj]
        for item in items:
            if not CURRENT.add(item, source):
                print(repr(item))
            elif isinstance(item, _figure_types()):
                plt.close(item)  # type: ignore[arg-type]


def install() -> None:
    """Route the libraries' display calls into the current capture (idempotent)."""
    import matplotlib
    import matplotlib.axes
    import matplotlib.figure
    import matplotlib.pyplot as plt

    if getattr(plt.show, "__codevl_capture__", False):
        return

    def plt_show(*args: Any, **kwargs: Any) -> None:
        CURRENT.add_open_figures("plt.show")
    plt_show.__codevl_capture__ = True  # type: ignore[attr-defined]
    plt.show = plt_show
    matplotlib.pyplot.show = plt_show

    def fig_show(self: Any, *args: Any, **kwargs: Any) -> None:
        CURRENT.add(self, "plt.show")
        plt.close(self)
    matplotlib.figure.Figure.show = fig_show  # type: ignore[method-assign]

    imshow = matplotlib.axes.Axes.imshow

    @functools.wraps(imshow)
    def imshow_traced(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        out = imshow(self, X, *args, **kwargs)
        try:
            if isinstance(X, Image.Image):
                out._codevl_region = TRACER.region(X, X.width, X.height)  # type: ignore[attr-defined]
            elif isinstance(X, np.ndarray) and X.ndim >= 2 and TRACER.consume(X, "matplotlib.axes.Axes.imshow"):
                out._codevl_region = TRACER.region(X, X.shape[1], X.shape[0])  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            TRACER.errors += 1
        return out
    matplotlib.axes.Axes.imshow = imshow_traced  # type: ignore[method-assign]

    def image_show(self: Image.Image, title: Any = None, **kwargs: Any) -> None:
        CURRENT.add(self, "Image.show")
    Image.Image.show = image_show  # type: ignore[method-assign]

    def cv2_imshow(winname: Any, mat: Any) -> None:
        CURRENT.add(mat, "cv2.imshow", bgr=True)
    cv2.imshow = cv2_imshow
    cv2.waitKey = lambda *a, **k: -1
    cv2.destroyAllWindows = lambda *a, **k: None
    cv2.destroyWindow = lambda *a, **k: None
    cv2.namedWindow = lambda *a, **k: None
