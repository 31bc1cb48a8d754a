"""Instrumentation of Pillow's geometric and pixel operations for the operation trace (see `sandbox.trace`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from sandbox import geometry as G
from sandbox.trace import TRACER, guarded

T = Image.Transpose
_TRANSPOSE_NAMES = {T[name]: op for name, op in G.PIL_TRANSPOSE_OPS.items()}  # type: ignore[misc, valid-type]


def _after(method: Callable[..., Any], api: str, derive: Callable[..., None]) -> Callable[..., Any]:
    """Wrap an Image method: run it, then (outermost call only) `derive(self, out, *args, **kwargs)`."""
    @functools.wraps(method)
    def wrapper(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        outer = TRACER.enter()
        try:
            out = method(self, *args, **kwargs)
        finally:
            TRACER.leave()
        if outer:
            guarded(derive)(self, out, *args, **kwargs)
        return out
    wrapper.__codevl_traced__ = True  # type: ignore[attr-defined]
    return wrapper


def _crop(self: Image.Image, out: Image.Image, box: Any = None) -> None:
    if box is None:
        TRACER.derive(out, self, None, "PIL.Image.Image.crop", G.IDENTITY)
        return
    left, top, right, bottom = (float(v) for v in box)
    TRACER.derive(out, self, "crop", "PIL.Image.Image.crop", G.crop(left, top), out_size=out.size,
                  params={"box": [left, top, right, bottom]})


def _transpose(self: Image.Image, out: Image.Image, method: Any) -> None:
    name = _TRANSPOSE_NAMES[T(method)]
    TRACER.derive(out, self, name, "PIL.Image.Image.transpose", G.orientation(name, *self.size), out_size=out.size)


def _rotate(self: Image.Image, out: Image.Image, angle: float, resample: Any = None, expand: Any = 0,
            center: Any = None, translate: Any = None, fillcolor: Any = None) -> None:
    a = float(angle) % 360.0
    params = {"angle": float(angle), "expand": bool(expand)}
    if a == 0 and not (center or translate):
        TRACER.derive(out, self, None, "PIL.Image.Image.rotate", G.IDENTITY)
        return
    if not (center or translate) and (a == 180 or (a in (90, 270) and (expand or self.width == self.height))):
        name = G.angle_op(a)
        assert name is not None
        TRACER.derive(out, self, name, "PIL.Image.Image.rotate", G.orientation(name, *self.size), out_size=out.size,
                      params=params)
        return
    name = G.angle_op(a) or "rotate"
    rel = G.pil_rotate(self.width, self.height, float(angle), bool(expand), center, translate)
    TRACER.derive(out, self, name, "PIL.Image.Image.rotate", rel, out_size=out.size, params=params)


def _resize(self: Image.Image, out: Image.Image, size: Any, resample: Any = None, box: Any = None,
            reducing_gap: Any = None) -> None:
    w, h = self.size
    l, t, r, b = (float(v) for v in box) if box is not None else (0.0, 0.0, float(w), float(h))
    ow, oh = out.size
    rel = G.scale((r - l) / ow, (b - t) / oh, l, t)
    if box is not None and (l > 0 or t > 0 or r < w or b < h):
        TRACER.derive(None, self, "crop", "PIL.Image.Image.resize", G.crop(l, t), out_size=(int(r - l), int(b - t)))
    if out.size == self.size and box is None:
        TRACER.derive(out, self, None, "PIL.Image.Image.resize", rel)
    else:
        TRACER.derive(out, self, "resize", "PIL.Image.Image.resize", rel, out_size=out.size,
                      params={"size": [ow, oh]})


def _reduce(self: Image.Image, out: Image.Image, factor: Any, box: Any = None) -> None:
    fx, fy = (factor, factor) if isinstance(factor, int) else factor
    l, t = (float(box[0]), float(box[1])) if box is not None else (0.0, 0.0)
    TRACER.derive(out, self, "resize", "PIL.Image.Image.reduce", G.scale(fx, fy, l, t), out_size=out.size)


def _thumbnail_before(self: Image.Image) -> tuple[int, int]:
    return self.size


def _same_geometry(op: str | None, api: str) -> Callable[..., None]:
    def derive(self: Image.Image, out: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(out, Image.Image) and out.size == self.size:
            TRACER.derive(out, self, op, api, G.IDENTITY, out_size=out.size)
    return derive


def _convert(self: Image.Image, out: Any, mode: Any = None, *args: Any, **kwargs: Any) -> None:
    if isinstance(out, Image.Image):
        op = "convert" if out.mode != self.mode else None
        TRACER.derive(out, self, op, "PIL.Image.Image.convert", G.IDENTITY, out_size=out.size,
                      params={"mode": out.mode} if op else None)


def _transform(self: Image.Image, out: Any, size: Any, method: Any, data: Any = None, *args: Any, **kwargs: Any) -> None:
    m = getattr(method, "value", method)
    ow, oh = out.size
    if m == Image.Transform.AFFINE and data is not None and len(data) >= 6:
        rel = tuple(float(v) for v in data[:6])
        name = G.orientation_name(rel) or "affine"  # type: ignore[arg-type]
        TRACER.derive(out, self, name if name != "rotate" else "rotate", "PIL.Image.Image.transform", rel,  # type: ignore[arg-type]
                      out_size=out.size)
    elif m == Image.Transform.EXTENT and data is not None:
        x0, y0, x1, y1 = (float(v) for v in data[:4])
        TRACER.derive(out, self, "crop", "PIL.Image.Image.transform", G.scale((x1 - x0) / ow, (y1 - y0) / oh, x0, y0),
                      out_size=out.size)
    else:
        TRACER.derive(out, self, "transform", "PIL.Image.Image.transform", None)


def _wrap_function(module: Any, name: str, op: str | None, rel_of: Callable[..., G.Affine | None] | None = None) -> None:
    fn = getattr(module, name, None)
    if fn is None or getattr(fn, "__codevl_traced__", False):
        return
    api = f"{module.__name__}.{name}"

    @functools.wraps(fn)
    def wrapper(image: Any, *args: Any, **kwargs: Any) -> Any:
        outer = TRACER.enter()
        try:
            out = fn(image, *args, **kwargs)
        finally:
            TRACER.leave()
        if outer and isinstance(out, Image.Image) and isinstance(image, Image.Image):
            def derive() -> None:
                rel = rel_of(image, out, *args, **kwargs) if rel_of else (G.IDENTITY if out.size == image.size else None)
                TRACER.derive(out, image, op, api, rel, out_size=out.size)
            guarded(derive)()
        return out
    wrapper.__codevl_traced__ = True  # type: ignore[attr-defined]
    setattr(module, name, wrapper)


def _fit_rel(image: Image.Image, out: Image.Image, size: Any, *args: Any, **kwargs: Any) -> G.Affine | None:
    return None  # geometry depends on centring/bleed; the op is recorded, the region is not


def _border_rel(image: Image.Image, out: Image.Image, border: Any = 0, *args: Any, **kwargs: Any) -> G.Affine | None:
    b = border if isinstance(border, (tuple, list)) else (border,)
    left = float(b[0]) if b else 0.0
    top = float(b[1]) if len(b) > 1 else left
    return G.crop(left, top)


def _expand_rel(image: Image.Image, out: Image.Image, border: Any = 0, *args: Any, **kwargs: Any) -> G.Affine | None:
    left, top = _border_rel(image, out, border)[2], _border_rel(image, out, border)[5]  # type: ignore[index]
    return G.crop(-left, -top)


def _scale_rel(image: Image.Image, out: Image.Image, *args: Any, **kwargs: Any) -> G.Affine | None:
    return G.scale(image.width / out.width, image.height / out.height)


def install() -> None:
    """Patch Pillow (idempotent)."""
    I = Image.Image
    if getattr(I.crop, "__codevl_traced__", False):
        return
    I.crop = _after(I.crop, "PIL.Image.Image.crop", _crop)  # type: ignore[method-assign]
    I.transpose = _after(I.transpose, "PIL.Image.Image.transpose", _transpose)  # type: ignore[method-assign]
    I.rotate = _after(I.rotate, "PIL.Image.Image.rotate", _rotate)  # type: ignore[method-assign]
    I.resize = _after(I.resize, "PIL.Image.Image.resize", _resize)  # type: ignore[method-assign]
    I.reduce = _after(I.reduce, "PIL.Image.Image.reduce", _reduce)  # type: ignore[method-assign]
    I.transform = _after(I.transform, "PIL.Image.Image.transform", _transform)  # type: ignore[method-assign]
    I.copy = _after(I.copy, "PIL.Image.Image.copy", _same_geometry(None, "PIL.Image.Image.copy"))  # type: ignore[method-assign]
    I.convert = _after(I.convert, "PIL.Image.Image.convert", _convert)  # type: ignore[method-assign]
    I.filter = _after(I.filter, "PIL.Image.Image.filter", _same_geometry("filter", "PIL.Image.Image.filter"))  # type: ignore[method-assign]
    I.point = _after(I.point, "PIL.Image.Image.point", _same_geometry("enhance", "PIL.Image.Image.point"))  # type: ignore[method-assign]
    I.getchannel = _after(I.getchannel, "PIL.Image.Image.getchannel", _same_geometry("convert", "PIL.Image.Image.getchannel"))  # type: ignore[method-assign]

    thumb = I.thumbnail

    @functools.wraps(thumb)
    def thumbnail(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        before = self.size
        outer = TRACER.enter()
        try:
            out = thumb(self, *args, **kwargs)
        finally:
            TRACER.leave()
        if outer and self.size != before:
            guarded(TRACER.derive)(self, self, "resize", "PIL.Image.Image.thumbnail",
                                   G.scale(before[0] / self.width, before[1] / self.height), out_size=self.size)
        return out
    thumbnail.__codevl_traced__ = True  # type: ignore[attr-defined]
    I.thumbnail = thumbnail  # type: ignore[method-assign]

    # fromarray: pixels from a (possibly traced) array
    fromarray = Image.fromarray

    @functools.wraps(fromarray)
    def fromarray_traced(obj: Any, *args: Any, **kwargs: Any) -> Any:
        outer = TRACER.enter()
        try:
            out = fromarray(obj, *args, **kwargs)
        finally:
            TRACER.leave()
        if outer:
            guarded(TRACER.derive)(out, obj, None, "PIL.Image.fromarray", G.IDENTITY)
        return out
    fromarray_traced.__codevl_traced__ = True  # type: ignore[attr-defined]
    Image.fromarray = fromarray_traced

    for name, op in (("mirror", "flip_h"), ("flip", "flip_v")):
        _wrap_function(ImageOps, name, op, lambda im, out, *a, _n=op, **k: G.orientation(_n, *im.size))
    _wrap_function(ImageOps, "exif_transpose", None)
    _wrap_function(ImageOps, "crop", "crop", _border_rel)
    _wrap_function(ImageOps, "expand", "pad", _expand_rel)
    _wrap_function(ImageOps, "fit", "crop", _fit_rel)
    _wrap_function(ImageOps, "contain", "resize", _scale_rel)
    _wrap_function(ImageOps, "scale", "resize", _scale_rel)
    _wrap_function(ImageOps, "pad", "pad", None)
    for name in ("autocontrast", "equalize", "invert", "posterize", "solarize", "colorize"):
        _wrap_function(ImageOps, name, "enhance")
    _wrap_function(ImageOps, "grayscale", "convert")

    enhance = ImageEnhance._Enhance.enhance

    @functools.wraps(enhance)
    def enhance_traced(self: Any, factor: float) -> Any:
        outer = TRACER.enter()
        try:
            out = enhance(self, factor)
        finally:
            TRACER.leave()
        if outer:
            guarded(TRACER.derive)(out, self.image, "enhance", f"PIL.ImageEnhance.{type(self).__name__}.enhance",
                                   G.IDENTITY, out_size=out.size, params={"factor": float(factor)})
        return out
    ImageEnhance._Enhance.enhance = enhance_traced  # type: ignore[method-assign]

    draw_init = ImageDraw.ImageDraw.__init__

    @functools.wraps(draw_init)
    def draw_traced(self: Any, im: Any, *args: Any, **kwargs: Any) -> None:
        draw_init(self, im, *args, **kwargs)
        if TRACER.enabled and getattr(TRACER._local, "depth", 0) == 0:
            guarded(TRACER.derive)(None, im, "draw", "PIL.ImageDraw.Draw", None)
    ImageDraw.ImageDraw.__init__ = draw_traced  # type: ignore[method-assign]
