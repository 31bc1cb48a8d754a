"""The operation trace: which image operations ran in a code block, and where derived images sit in the inputs.

Every image derived from an input image carries a `Provenance` (input index, affine map from its pixels to the
input's, op chain), kept in a registry keyed by object identity (weak references, so nothing is kept alive).
Instrumented entry points (`trace_pil`, `trace_numpy`, `trace_cv2`) call `Tracer.derive` when they produce an
image from a traced one, which both records an `OpRecord` and gives the output its provenance.

NumPy slicing cannot be hooked (it is a C slot of `ndarray`), so views are decoded lazily instead: an array
that is a view of a traced array is mapped back through its data offset and strides (crop, step = resize,
negative stride = flip, swapped axes = transpose/rotation). This happens when the view is consumed: shown,
converted to PIL, passed to OpenCV, copied with `np.array`/`np.copy`, or left in a top-level variable at the end
of the block.

What it cannot see (documented in the package docstring): pixel copies made by C-level methods
(`ndarray.copy()`, `astype`, arithmetic, fancy indexing) lose the provenance; code that rebuilds an image pixel
by pixel; libraries other than Pillow/OpenCV/NumPy (scikit-image transforms, matplotlib axis limits used as a
zoom); and code that deliberately tampers with the sandbox's internals (it runs in the same interpreter).
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandbox import geometry as G
from sandbox.result import ImageRegion, OpRecord


@dataclass(frozen=True)
class Provenance:
    input_index: int
    aff: G.Affine  # this object's pixel coordinates -> the input image's
    ops: tuple[str, ...] = ()


class Tracer:
    """Provenance registry + the op records of the block being run. One per session process."""

    def __init__(self) -> None:
        self._reg: dict[int, tuple[weakref.ref[Any], Provenance]] = {}
        self._recorded_views: dict[int, weakref.ref[Any]] = {}
        self.records: list[OpRecord] = []
        self.max_ops = 512
        self.dropped = 0
        self.errors = 0
        self.enabled = True
        self._scanning = False
        self._local = threading.local()

    # ---- guard: only the outermost instrumented call records (Pillow calls its own methods internally) ----

    def enter(self) -> bool:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        return depth == 0 and self.enabled

    def leave(self) -> None:
        self._local.depth -= 1

    # ---- registry ----

    def _forget(self, key: int) -> None:
        self._reg.pop(key, None)
        self._recorded_views.pop(key, None)

    def set(self, obj: Any, prov: Provenance | None) -> None:
        key = id(obj)
        if prov is None:
            self._reg.pop(key, None)
            return
        try:
            ref = weakref.ref(obj, lambda _r, k=key: self._forget(k))  # type: ignore[misc]
        except TypeError:
            return
        self._reg[key] = (ref, prov)

    def _direct(self, obj: Any) -> Provenance | None:
        hit = self._reg.get(id(obj))
        if hit is not None and hit[0]() is obj:
            return hit[1]
        return None

    def get(self, obj: Any) -> Provenance | None:
        """Provenance of a PIL image or an array (decoding NumPy views of traced arrays)."""
        p = self._direct(obj)
        if p is not None or not isinstance(obj, np.ndarray):
            return p
        decoded = self.decode_view(obj)
        return decoded[0] if decoded else None

    def region(self, obj: Any, width: int, height: int) -> ImageRegion | None:
        p = self.get(obj)
        if p is None:
            return None
        return ImageRegion(p.input_index, G.footprint(p.aff, width, height), list(p.ops))

    # ---- NumPy views ----

    def _anchor(self, v: np.ndarray) -> tuple[np.ndarray, Provenance] | None:
        b = v.base
        for _ in range(4):
            if not isinstance(b, np.ndarray):
                return None
            p = self._direct(b)
            if p is not None:
                return b, p
            b = b.base
        return None

    def decode_view(self, v: np.ndarray) -> tuple[Provenance, list[tuple[str, G.Affine]]] | None:
        """(provenance of view `v`, the ops from its traced anchor to it) or None when `v` is no image view of
        a traced array."""
        found = self._anchor(v)
        if found is None or v.ndim not in (2, 3):
            return None
        anchor, ap = found
        if anchor.ndim not in (2, 3) or not anchor.flags.c_contiguous:
            return None
        H, W = anchor.shape[:2]
        sy, sx = anchor.strides[0], anchor.strides[1]
        d = v.__array_interface__["data"][0] - anchor.__array_interface__["data"][0]
        if d < 0 or d >= anchor.nbytes or sy <= 0 or sx <= 0:
            return None
        r0, rem = divmod(d, sy)
        c0 = rem // sx

        def axis(t: int) -> tuple[str, int] | None:
            if t != 0 and t % sy == 0:
                return "y", t // sy
            if t != 0 and t % sx == 0 and abs(t // sx) < W:
                return "x", t // sx
            return None

        a0, a1 = axis(v.strides[0]), axis(v.strides[1])
        if a0 is None or a1 is None or {a0[0], a1[0]} != {"x", "y"}:
            return None
        if v.ndim == 3 and (anchor.ndim != 3 or abs(v.strides[2]) != anchor.strides[2] or v.shape[2] not in (1, 3, 4)):
            return None
        # child (x = column j, y = row i) -> anchor (X, Y)
        coef = {"x": [0.0, 0.0, float(c0)], "y": [0.0, 0.0, float(r0)]}
        for (kind, step), slot in ((a1, 0), (a0, 1)):  # a1 runs along the child's x, a0 along its y
            coef[kind][slot] = float(step)
            if step < 0:
                coef[kind][2] += 1.0
        rel: G.Affine = (coef["x"][0], coef["x"][1], coef["x"][2], coef["y"][0], coef["y"][1], coef["y"][2])
        ops: list[tuple[str, G.Affine]] = []
        orient = G.orientation_name(rel)
        if orient is not None:
            ops.append((orient, rel))
        h, w = v.shape[:2]
        x1, y1, x2, y2 = G.footprint(rel, w, h)
        if x1 > 0 or y1 > 0 or x2 < W or y2 < H:
            ops.append(("crop", rel))
        if abs(a0[1]) != 1 or abs(a1[1]) != 1:
            ops.append(("resize", rel))
        prov = Provenance(ap.input_index, G.compose(ap.aff, rel), ap.ops + tuple(n for n, _ in ops))
        return prov, ops

    def consume(self, obj: Any, api: str) -> Provenance | None:
        """Provenance of `obj`; when it is a traced view seen for the first time, record the ops it embodies."""
        p = self._direct(obj)
        if p is not None or not isinstance(obj, np.ndarray):
            return p
        decoded = self.decode_view(obj)
        if decoded is None:
            return None
        prov, ops = decoded
        key = id(obj)
        seen = self._recorded_views.get(key)
        if ops and not (seen is not None and seen() is obj):
            h, w = obj.shape[:2]
            box = G.footprint(prov.aff, w, h)
            for name, _ in ops:
                self.record(OpRecord(name, api, prov.input_index, box, {"via": "numpy view"}))
            self.mark_recorded(obj)
        return prov

    def mark_recorded(self, view: Any) -> None:
        """The ops of this view are in the trace already (do not record them again when it is consumed)."""
        key = id(view)
        try:
            self._recorded_views[key] = weakref.ref(view, lambda _r, k=key: self._recorded_views.pop(k, None))  # type: ignore[misc]
        except TypeError:
            pass

    # ---- recording ----

    def record(self, rec: OpRecord) -> None:
        if not (self._scanning or _called_from_user_code()):
            return
        if len(self.records) >= self.max_ops:
            self.dropped += 1
            return
        if self.records and self.records[-1] == rec:  # identical consecutive records (loops) count once
            return
        self.records.append(rec)

    def derive(self, out: Any, src: Any, op: str | None, api: str, rel: G.Affine | None, *,
               out_size: tuple[int, int] | None = None, params: dict[str, Any] | None = None,
               src_prov: Provenance | None = None) -> None:
        """`out` was made from `src` by `op` (None: a plain conversion, nothing recorded); `rel` maps `out`'s
        pixels to `src`'s (None: the geometry is unknown, so `out` gets no provenance)."""
        p = src_prov if src_prov is not None else self.consume(src, api)
        if p is None:
            if op is not None:
                self.record(OpRecord(op, api, None, None, dict(params or {})))
            return
        if rel is None:
            if op is not None:
                self.record(OpRecord(op, api, p.input_index, None, dict(params or {})))
            return
        new = Provenance(p.input_index, G.compose(p.aff, rel), p.ops + ((op,) if op else ()))
        if out is not None:
            self.set(out, new)
        if op is not None:
            box = G.footprint(new.aff, *out_size) if out_size else None
            self.record(OpRecord(op, api, p.input_index, box, dict(params or {})))

    def begin(self, max_ops: int) -> None:
        self.records = []
        self.dropped = 0
        self.max_ops = max_ops

    def consume_for_user(self, obj: Any, api: str) -> Provenance | None:
        """`consume` on behalf of the user's code, from the sandbox's own frames (the block's last expression is
        shown by the interpreter, not by a user call, yet its view's ops are the user's)."""
        prev, self._scanning = self._scanning, True
        try:
            return self.consume(obj, api)
        finally:
            self._scanning = prev

    def scan(self, namespace: dict[str, Any]) -> None:
        """End of block: record the ops of traced NumPy views left in top-level variables."""
        self._scanning = True
        try:
            for value in list(namespace.values())[:10000]:
                if isinstance(value, np.ndarray) and value.base is not None:
                    try:
                        self.consume(value, "numpy.ndarray.__getitem__")
                    except Exception:  # noqa: BLE001 - the trace is best effort, never an error in user code
                        self.errors += 1
        finally:
            self._scanning = False


def _called_from_user_code() -> bool:
    """Whether the nearest frame outside the sandbox package is the user's code (a `<cell N>` frame). Operations
    that libraries perform internally (matplotlib flipping arrays while drawing, ...) are not the model's."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR):
        f = f.f_back  # type: ignore[assignment]
    return f is not None and f.f_code.co_filename.startswith("<cell ")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
TRACER = Tracer()


def guarded(fn: Any) -> Any:
    """Run tracer bookkeeping so that a bug in it can never surface as an error in the user's code."""
    def call(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001
            TRACER.errors += 1
    return call
