"""Instrumentation of NumPy's module-level entry points for the operation trace (see `sandbox.trace`).

`np.array` / `np.asarray` of a traced PIL image gives a traced array (the anchor that views are decoded against;
`np.asarray` of an image returns a fresh writable copy so that views of it keep it alive); copies of traced views
(`np.array`, `np.copy`, `np.ascontiguousarray`) stay traced; `np.rot90`, `np.flip`, `np.fliplr`, `np.flipud`,
`np.transpose`, `np.swapaxes` record their op (their output is a view, decoded like any other).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from sandbox import geometry as G
from sandbox.result import OpRecord
from sandbox.trace import TRACER, guarded

_ARRAY = np.array  # the original, captured before install() patches it


def _wrap_copying(name: str) -> None:
    fn = getattr(np, name)
    if getattr(fn, "__codevl_traced__", False):
        return
    api = f"numpy.{name}"

    @functools.wraps(fn)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, Image.Image) and name in ("asarray", "asanyarray"):
            out = _ARRAY(obj, *args, **kwargs)
        else:
            out = fn(obj, *args, **kwargs)
        if TRACER.enabled and out is not obj and isinstance(out, np.ndarray) and out.ndim in (2, 3) \
                and out.flags.c_contiguous and isinstance(obj, (Image.Image, np.ndarray)):
            def derive() -> None:
                if out.shape[:2] != (obj.size[::-1] if isinstance(obj, Image.Image) else obj.shape[:2]):
                    return
                TRACER.derive(out, obj, None, api, G.IDENTITY)
            guarded(derive)()
        return out
    wrapper.__codevl_traced__ = True  # type: ignore[attr-defined]
    setattr(np, name, wrapper)


def _wrap_view_op(name: str, op_of: Callable[..., str | None]) -> None:
    fn = getattr(np, name)
    if getattr(fn, "__codevl_traced__", False):
        return
    api = f"numpy.{name}"

    @functools.wraps(fn)
    def wrapper(m: Any, *args: Any, **kwargs: Any) -> Any:
        out = fn(m, *args, **kwargs)
        if TRACER.enabled and isinstance(m, np.ndarray) and isinstance(out, np.ndarray) and m.ndim in (2, 3):
            def derive() -> None:
                p = TRACER.consume(m, api)
                op = op_of(m, *args, **kwargs)
                if p is None or op is None:
                    if op is not None:
                        TRACER.derive(None, m, op, api, None)
                    return
                q = TRACER.get(out)
                box = G.footprint(q.aff, out.shape[1], out.shape[0]) if q is not None else None
                TRACER.record(OpRecord(op, api, p.input_index, box, {}))
                if q is not None:
                    TRACER.mark_recorded(out)
            guarded(derive)()
        return out
    wrapper.__codevl_traced__ = True  # type: ignore[attr-defined]
    setattr(np, name, wrapper)


def _rot90_op(m: Any, k: int = 1, axes: Any = (0, 1)) -> str | None:
    kk = int(k) % 4
    if tuple(int(a) % m.ndim for a in axes) == (1, 0):
        kk = (-kk) % 4
    return G.rot90_op(kk)


def _flip_op(m: Any, axis: Any = None) -> str | None:
    if axis is None:
        axes = {0, 1} if m.ndim == 2 else {0, 1, 2}
    else:
        axes = {int(a) % m.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    return G.array_flip_op(axes)


def _transpose_op(m: Any, axes: Any = None, *args: Any, **kwargs: Any) -> str | None:
    if axes is None:
        return "transpose" if m.ndim == 2 else None
    ax = [int(a) % m.ndim for a in axes]
    return "transpose" if ax[:2] == [1, 0] else None


def _swapaxes_op(m: Any, axis1: int, axis2: int) -> str | None:
    return "transpose" if {int(axis1) % m.ndim, int(axis2) % m.ndim} == {0, 1} else None


def install() -> None:
    """Patch NumPy's module functions (idempotent). `ndarray` methods and slicing are C slots: see trace.py."""
    for name in ("array", "asarray", "asanyarray", "ascontiguousarray", "copy"):
        _wrap_copying(name)
    _wrap_view_op("rot90", _rot90_op)
    _wrap_view_op("flip", _flip_op)
    _wrap_view_op("fliplr", lambda m: "flip_h")
    _wrap_view_op("flipud", lambda m: "flip_v")
    _wrap_view_op("transpose", _transpose_op)
    _wrap_view_op("swapaxes", _swapaxes_op)
