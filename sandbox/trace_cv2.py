"""Instrumentation of OpenCV's image functions for the operation trace (see `sandbox.trace`).

OpenCV functions are C functions in the `cv2` module, so they are wrapped at module level: geometric ones
(resize, rotate, flip, transpose, warpAffine, getRectSubPix, pyrDown/pyrUp, copyMakeBorder) map the output back to
the input; pixel-wise ones keep the input's geometry and add their op name; drawing functions record `draw`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from sandbox import geometry as G
from sandbox.trace import TRACER, guarded

Rel = Callable[..., G.Affine | None]


def _resize_rel(src: np.ndarray, out: np.ndarray, *a: Any, **k: Any) -> G.Affine:
    return G.scale(src.shape[1] / out.shape[1], src.shape[0] / out.shape[0])


def _rotate_name(src: np.ndarray, code: int, *a: Any, **k: Any) -> str:
    return {int(getattr(cv2, name)): op for name, op in G.CV2_ROTATE_OPS.items()}[int(code)]


def _flip_name(src: np.ndarray, code: int, *a: Any, **k: Any) -> str:
    return G.cv2_flip_op(code)


def _orient_rel(namer: Callable[..., str]) -> Rel:
    def rel(src: np.ndarray, out: np.ndarray, *a: Any, **k: Any) -> G.Affine:
        return G.orientation(namer(src, *a, **k), src.shape[1], src.shape[0])
    return rel


def _warp_rel(src: np.ndarray, out: np.ndarray, M: Any = None, *a: Any, **k: Any) -> G.Affine | None:
    m = np.asarray(M if M is not None else k.get("M"), dtype=float).reshape(2, 3)
    flags = int(a[1]) if len(a) > 1 else int(k.get("flags", 0))
    fwd: G.Affine = tuple(float(v) for v in m.ravel())  # type: ignore[assignment]
    return fwd if flags & cv2.WARP_INVERSE_MAP else G.invert(fwd)


def _warp_name(src: np.ndarray, M: Any = None, *a: Any, **k: Any) -> str:
    rel = _warp_rel(src, src, M, *a, **k)
    if rel is None:
        return "affine"
    name = G.orientation_name(rel)
    return {None: "affine"}.get(name, name)  # type: ignore[arg-type, return-value]


def _subpix_rel(src: np.ndarray, out: np.ndarray, patchSize: Any = None, center: Any = None, *a: Any, **k: Any) -> G.Affine:
    w, h = patchSize
    cx, cy = center
    return G.crop(cx - w / 2 + 0.5, cy - h / 2 + 0.5)


def _border_rel(src: np.ndarray, out: np.ndarray, top: int = 0, bottom: int = 0, left: int = 0, *a: Any, **k: Any) -> G.Affine:
    return G.crop(-float(left), -float(top))


GEOMETRIC: dict[str, tuple[Callable[..., str] | str, Rel]] = {
    "resize": ("resize", _resize_rel),
    "pyrDown": ("resize", _resize_rel),
    "pyrUp": ("resize", _resize_rel),
    "rotate": (_rotate_name, _orient_rel(_rotate_name)),
    "flip": (_flip_name, _orient_rel(_flip_name)),
    "transpose": ("transpose", lambda s, o, *a, **k: G.orientation("transpose", s.shape[1], s.shape[0])),
    "warpAffine": (_warp_name, _warp_rel),
    "getRectSubPix": ("crop", _subpix_rel),
    "copyMakeBorder": ("pad", _border_rel),
}
PIXELWISE: dict[str, str | None] = {
    "cvtColor": "convert", "GaussianBlur": "filter", "blur": "filter", "medianBlur": "filter",
    "bilateralFilter": "filter", "boxFilter": "filter", "filter2D": "filter", "sepFilter2D": "filter",
    "Sobel": "filter", "Scharr": "filter", "Laplacian": "filter", "Canny": "edges", "threshold": "threshold",
    "adaptiveThreshold": "threshold", "inRange": "threshold", "equalizeHist": "enhance",
    "convertScaleAbs": "enhance", "normalize": "enhance", "LUT": "enhance", "addWeighted": "enhance",
    "bitwise_not": "invert", "dilate": "morphology", "erode": "morphology", "morphologyEx": "morphology",
    "detailEnhance": "enhance", "fastNlMeansDenoising": "filter", "fastNlMeansDenoisingColored": "filter",
    "split": None, "merge": None,
}
DRAWING = ("rectangle", "circle", "line", "arrowedLine", "ellipse", "putText", "polylines", "fillPoly",
           "drawContours", "drawMarker", "fillConvexPoly")


def _first_image(out: Any) -> np.ndarray | None:
    if isinstance(out, np.ndarray):
        return out
    if isinstance(out, tuple):  # threshold returns (retval, image)
        for item in out:
            if isinstance(item, np.ndarray) and item.ndim in (2, 3):
                return item
    return None


def _wrap(name: str, op: Callable[..., str] | str | None, rel: Rel | None, drawing: bool = False) -> None:
    fn = getattr(cv2, name, None)
    if fn is None or getattr(fn, "__codevl_traced__", False):
        return
    api = f"cv2.{name}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        src = args[0] if args else (kwargs.get("src") if "src" in kwargs else kwargs.get("img"))
        if TRACER.enabled and isinstance(src, np.ndarray) and src.ndim in (2, 3):
            def derive() -> None:
                rest = args[1:]
                name_ = op(src, *rest, **kwargs) if callable(op) else op
                if drawing:
                    TRACER.derive(None, src, "draw", api, None)
                    return
                img = _first_image(out)
                if img is None:
                    return
                if rel is not None:
                    r = rel(src, img, *rest, **kwargs)
                elif img.shape[:2] == src.shape[:2]:
                    r = G.IDENTITY
                else:
                    r = None
                grey = name == "cvtColor" and img.ndim == 2 and src.ndim == 3  # mode like PIL's convert("L")
                TRACER.derive(img, src, name_, api, r, out_size=(img.shape[1], img.shape[0]),
                              params={"mode": "L"} if grey else None)
            guarded(derive)()
        return out
    wrapper.__codevl_traced__ = True  # type: ignore[attr-defined]
    setattr(cv2, name, wrapper)


def install() -> None:
    """Patch OpenCV's module functions (idempotent)."""
    for name, (op, rel) in GEOMETRIC.items():
        _wrap(name, op, rel)
    for name, op in PIXELWISE.items():  # type: ignore[assignment]
        if op is not None:
            _wrap(name, op, None)
    for name in DRAWING:
        _wrap(name, "draw", None, drawing=True)
