"""Static analysis of a code block: which image operations it calls, and where crops look in the input image.

This is the fallback for steps without an operation trace (docs/architecture.md, sandbox: "AST parsing of the code is the
fallback"); the trace, when present, is what really ran. Operation names follow `sandbox.result`: `crop`,
`rotate90` (counter-clockwise, PIL `rotate(90)`, `np.rot90(k=1)`), `rotate180`, `rotate270` (clockwise),
`rotate` (other angles), `flip_h`, `flip_v`, `resize`, and free-form names (`enhance`, `filter`, `threshold`,
`draw`, `convert`, `transpose`).

Lineage: values derived from the input images (`image_clue_0`, ... per the protocol) are followed through
straight-line assignments, with an affine map from the current image's pixel coordinates back to the original
image's. Crop boxes are mapped through it, so `image_clue_0.rotate(90, expand=True).crop(b)` yields the box that
region occupies in the original image. The geometry (which way `rotate90` turns, how a box maps through each op,
PIL's `rotate` without `expand=True` turning about the centre) is `sandbox.geometry`'s, the project's one
orientation rule, so the static analysis and the sandbox's trace cannot disagree.
Anything the analysis cannot follow (loops over variables, function arguments, non-constant boxes) still counts
as a use of the operation, without a box or input index. Array slicing counts only on values known to derive
from an input image (so `items[1:3]` is not a crop). Images shown (`show(x)`, `display(x)`, `x.show()`,
`plt.imshow(x)`, `cv2.imshow(name, x)`) are listed in order with their lineage.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rewards.boxes import Box
from sandbox import geometry as G
from sandbox.result import ORIENTATION_OPS

Matrix = G.Affine  # (a, b, c, d, e, f): x = a x' + b y' + c; y = d x' + e y' + f (current -> original image)
IDENTITY: Matrix = G.IDENTITY

NUMPY = {"np", "numpy"}
CV2 = {"cv2"}
PIL_IMAGE = {"Image", "PIL.Image"}
IMAGE_OPS = {"ImageOps"}
IMAGE_ENHANCE = {"ImageEnhance"}
PLT = {"plt", "pyplot"}

_ENHANCE_FUNCS = {"autocontrast", "equalize", "posterize", "solarize", "sharpness", "invert", "grayscale"}
_CV2_FILTERS = {"GaussianBlur", "medianBlur", "blur", "bilateralFilter", "filter2D", "Canny", "Sobel", "Laplacian",
                "morphologyEx", "dilate", "erode"}
_CV2_DRAW = {"rectangle", "line", "circle", "putText", "arrowedLine", "polylines", "ellipse", "drawContours"}
_CV2_ENHANCE = {"equalizeHist", "createCLAHE", "convertScaleAbs", "addWeighted", "normalize", "LUT"}
_TRANSPOSE = G.PIL_TRANSPOSE_OPS
_CV2_ROTATE = G.CV2_ROTATE_OPS


@dataclass(frozen=True)
class Lineage:
    """A value derived from input image `input_index`: map to original coordinates, current size, op chain."""

    input_index: int
    matrix: Matrix = IDENTITY
    size: tuple[float, float] | None = None  # (width, height) of the current image, when known
    ops: tuple[str, ...] = ()

    def map_box(self, box: Box) -> Box:
        """`box` in this image's coordinates -> its bounding box in the original image."""
        return G.map_box_through(self.matrix, box)

    def region(self) -> Box | None:
        """Where the whole current image lies in the original (None when its size is unknown)."""
        return self.map_box((0.0, 0.0, self.size[0], self.size[1])) if self.size else None

    def then(self, op: str, transform: Matrix | None = None, size: tuple[float, float] | None = None,
             *, needs_size: bool = False) -> Lineage | None:
        if needs_size and self.size is None:
            return None
        matrix = self.matrix if transform is None else G.compose(self.matrix, transform)
        return Lineage(self.input_index, matrix, size if size is not None else self.size, (*self.ops, op))


def rotation_transform(op: str, width: float, height: float, *, expand: bool) -> tuple[Matrix, tuple[float, float]]:
    """(new -> old coordinates, new size) for rotate90 / rotate180 / rotate270 / flip_h / flip_v, from
    `sandbox.geometry`; `expand=False` is PIL's `rotate` keeping the size (a quarter turn about the centre)."""
    G.check_orientation_op(op)
    if expand or op in ("rotate180", "flip_h", "flip_v"):
        return G.orientation(op, width, height), G.output_size(op, width, height)
    angle = {"rotate90": 90.0, "rotate270": 270.0}[op]
    return G.pil_rotate(width, height, angle, expand=False), (width, height)


@dataclass(frozen=True)
class StaticOp:
    """One operation found in the code: name, 1-based line, input image it applies to and crop box in the
    original image's coordinates (when the lineage could be followed)."""

    op: str
    line: int
    input_index: int | None = None
    box: Box | None = None
    detail: str | None = None  # `convert`: the target mode ("L") or OpenCV code name ("COLOR_BGR2GRAY")


@dataclass
class StaticAnalysis:
    """All operations (in source order) and the shown images' lineages (None where unknown)."""

    ops: list[StaticOp] = field(default_factory=list)
    shown: list[Lineage | None] = field(default_factory=list)
    parsed: bool = True

    def op_names(self, before_line: int | None = None) -> set[str]:
        return {o.op for o in self.ops if before_line is None or o.line < before_line}


def _const(node: ast.AST | None) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const(node.operand)
        return -v if v is not None else None
    return None


def _const_seq(node: ast.AST | None, n: int) -> tuple[float, ...] | None:
    if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == n:
        vals = [_const(e) for e in node.elts]
        if all(v is not None for v in vals):
            return tuple(vals)  # type: ignore[arg-type]
    return None


def _attr_tail(node: ast.AST) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else (node.id if isinstance(node, ast.Name) else None)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _kw(call: ast.Call, name: str, pos: int | None = None) -> ast.AST | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    if pos is not None and len(call.args) > pos:
        return call.args[pos]
    return None


_angle_op = G.angle_op


class _Analyzer:
    def __init__(self, names: Mapping[str, int], sizes: Sequence[tuple[int, int]] | None) -> None:
        self.names = dict(names)
        self.sizes = list(sizes) if sizes is not None else None
        self.env: dict[str, Lineage | None] = {}
        self.out = StaticAnalysis()
        self.seen: set[int] = set()  # ids of nodes already handled by the lineage pass

    # ---- recording ------------------------------------------------------------------------------------------

    def op(self, node: ast.AST, name: str, src: Lineage | None, box: Box | None = None,
           detail: str | None = None) -> None:
        self.seen.add(id(node))
        self.out.ops.append(StaticOp(name, getattr(node, "lineno", 0), src.input_index if src else None, box,
                                     detail))

    def geometric(self, node: ast.AST, name: str, src: Lineage | None, *, expand: bool = True) -> Lineage | None:
        """Record a rotation/flip and return the derived lineage (None when it cannot be followed)."""
        self.op(node, name, src)
        if src is None or src.size is None or name not in ORIENTATION_OPS:
            return None
        t, size = rotation_transform(name, src.size[0], src.size[1], expand=expand)
        return src.then(name, t, size)

    def crop(self, node: ast.AST, src: Lineage | None, box: Box | None) -> Lineage | None:
        mapped = src.map_box(box) if (src is not None and box is not None) else None
        self.op(node, "crop", src, mapped)
        if src is None or box is None:
            return None
        a, b, c, d = box
        return src.then("crop", (1.0, 0.0, a, 0.0, 1.0, b), (c - a, d - b))

    def resize(self, node: ast.AST, src: Lineage | None, size: tuple[float, ...] | None) -> Lineage | None:
        self.op(node, "resize", src)
        if src is None or size is None or src.size is None or size[0] <= 0 or size[1] <= 0:
            return None
        w, h = src.size
        return src.then("resize", (w / size[0], 0.0, 0.0, 0.0, h / size[1], 0.0), (size[0], size[1]))

    def passthrough(self, node: ast.AST, name: str | None, src: Lineage | None,
                    detail: str | None = None) -> Lineage | None:
        if name:
            self.op(node, name, src, detail=detail)
            return src.then(name) if src is not None else None
        return src

    # ---- statements -----------------------------------------------------------------------------------------

    def run(self, code: str) -> StaticAnalysis:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            self.out.parsed = False
            return self.out
        self.block(tree.body)
        self.sweep(tree)
        self.out.ops.sort(key=lambda o: o.line)
        return self.out

    def block(self, stmts: Sequence[ast.stmt]) -> None:
        for stmt in stmts:
            self.stmt(stmt)

    def assign(self, target: ast.AST, value: Lineage | None) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.assign(t, None)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, None)

    def stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value)
            for t in stmt.targets:
                self.assign(t, value)
        elif isinstance(stmt, ast.AnnAssign):
            value = self.expr(stmt.value) if stmt.value is not None else None
            self.assign(stmt.target, value)
        elif isinstance(stmt, ast.AugAssign):
            self.expr(stmt.value)
            self.assign(stmt.target, None)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            saved = dict(self.env)
            for a in [*stmt.args.posonlyargs, *stmt.args.args, *stmt.args.kwonlyargs]:
                self.env[a.arg] = None
            self.block(stmt.body)
            self.env = saved
            self.env[stmt.name] = None
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.expr(stmt.iter)
            self.assign(stmt.target, None)
            self.block(stmt.body)
            self.block(stmt.orelse)
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.stmt):
                    self.stmt(child)
                elif isinstance(child, (ast.withitem,)):
                    self.expr(child.context_expr)
                    if child.optional_vars is not None:
                        self.assign(child.optional_vars, None)
                elif isinstance(child, ast.excepthandler):
                    self.block(child.body)  # type: ignore[attr-defined]

    # ---- expressions ----------------------------------------------------------------------------------------

    def expr(self, node: ast.AST | None) -> Lineage | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            if node.id in self.names:
                i = self.names[node.id]
                size = None
                if self.sizes is not None and i < len(self.sizes):
                    size = (float(self.sizes[i][0]), float(self.sizes[i][1]))
                return Lineage(i, IDENTITY, size)
            return None
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
        return None

    def subscript(self, node: ast.Subscript) -> Lineage | None:
        src = self.expr(node.value)
        self.expr(node.slice) if not isinstance(node.slice, (ast.Slice, ast.Tuple)) else None
        if src is None:
            return None
        dims = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if not dims or not all(isinstance(d, ast.Slice) for d in dims[:2]):
            return None
        rows = dims[0]
        cols = dims[1] if len(dims) > 1 else ast.Slice()
        result: Lineage | None = src
        for axis, sl in (("y", rows), ("x", cols)):
            assert isinstance(sl, ast.Slice)
            step = _const(sl.step) if sl.step is not None else 1.0
            if step == -1.0 and sl.lower is None and sl.upper is None:
                flip = G.array_flip_op({0} if axis == "y" else {1})
                assert flip is not None
                result = self.geometric(node, flip, result) if result else None
                if result is None:
                    self.op(node, flip, src)
                    return None
        lo_y, hi_y, lo_x, hi_x = rows.lower, rows.upper, cols.lower, cols.upper  # type: ignore[attr-defined]
        if all(v is None for v in (lo_y, hi_y, lo_x, hi_x)):
            return result
        if result is None or result.size is None:
            self.op(node, "crop", src)
            return None
        w, h = result.size

        def bound(v: ast.AST | None, default: float, extent: float) -> float | None:
            if v is None:
                return default
            c = _const(v)
            if c is None:
                return None
            c = extent + c if c < 0 else c
            return min(max(c, 0.0), extent)  # NumPy clamps slice bounds

        vals = (bound(lo_x, 0.0, w), bound(lo_y, 0.0, h), bound(hi_x, w, w), bound(hi_y, h, h))
        if any(v is None for v in vals):
            self.op(node, "crop", src)
            return None
        return self.crop(node, result, vals)  # type: ignore[arg-type]

    def call(self, node: ast.Call) -> Lineage | None:
        func = node.func
        args = node.args
        if isinstance(func, ast.Attribute):
            owner = _dotted(func.value)
            fn = func.attr
            if owner in NUMPY:
                return self.numpy_call(node, fn)
            if owner in CV2:
                return self.cv2_call(node, fn)
            if owner in PIL_IMAGE and fn == "fromarray":
                return self.expr(args[0]) if args else None
            if owner in IMAGE_OPS:
                src = self.expr(args[0]) if args else None
                for a in args[1:]:
                    self.expr(a)
                if fn == "mirror":
                    return self.geometric(node, "flip_h", src)
                if fn == "flip":
                    return self.geometric(node, "flip_v", src)
                if fn == "exif_transpose":
                    return src
                if fn in ("fit", "pad", "contain", "scale"):
                    self.op(node, "resize", src)
                    return None
                return self.passthrough(node, "enhance" if fn in _ENHANCE_FUNCS else fn, src)
            if owner in IMAGE_ENHANCE:
                return self.expr(args[0]) if args else None  # ImageEnhance.Contrast(img): op at .enhance()
            if owner in PLT:
                src = self.expr(args[0]) if args else None
                if fn == "imshow":
                    self.out.shown.append(src)
                    self.seen.add(id(node))
                return None
            if owner == "ImageDraw" and fn == "Draw":
                src = self.expr(args[0]) if args else None
                self.op(node, "draw", src)
                return None
            return self.method(node, fn)
        if isinstance(func, ast.Name) and func.id in ("show", "display"):
            src = self.expr(args[0]) if args else None
            for a in args[1:]:
                self.expr(a)
            self.out.shown.append(src)
            self.seen.add(id(node))
            return None
        self.expr(func)
        for a in [*args, *(k.value for k in node.keywords)]:
            self.expr(a)
        return None

    def method(self, node: ast.Call, fn: str) -> Lineage | None:
        assert isinstance(node.func, ast.Attribute)
        recv = self.expr(node.func.value)
        for a in [*node.args, *(k.value for k in node.keywords)]:
            self.expr(a)
        if fn == "crop":
            box = _const_seq(_kw(node, "box", 0), 4)
            if box is None and len(node.args) == 4:
                box = tuple(_const(a) for a in node.args)  # type: ignore[misc]
                box = box if all(v is not None for v in box) else None
            return self.crop(node, recv, box)  # type: ignore[arg-type]
        if fn == "rotate":
            angle = _const(_kw(node, "angle", 0))
            expand_node = _kw(node, "expand", 2)
            expand = isinstance(expand_node, ast.Constant) and bool(expand_node.value)
            if angle is None:
                self.op(node, "rotate", recv)
                return None
            op = _angle_op(angle)
            if op is None:
                return recv
            if op == "rotate":
                self.op(node, "rotate", recv)
                return None
            return self.geometric(node, op, recv, expand=expand)
        if fn == "transpose":
            arg = _kw(node, "method", 0)
            op = _TRANSPOSE.get(_attr_tail(arg) or "") if arg is not None else None
            if op is None:
                return None  # ndarray.transpose(...) or unknown method
            if op in ("transpose", "transverse"):
                self.op(node, op, recv)
                return None
            return self.geometric(node, op, recv)
        if fn == "resize":
            return self.resize(node, recv, _const_seq(_kw(node, "size", 0), 2))
        if fn == "thumbnail":
            self.op(node, "resize", recv)
            return None
        if fn == "enhance":
            return self.passthrough(node, "enhance", recv)
        if fn == "filter":
            return self.passthrough(node, "filter", recv)
        if fn == "convert":
            mode = _kw(node, "mode", 0)
            detail = mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else None
            return self.passthrough(node, "convert", recv, detail)
        if fn in ("copy", "astype"):
            return recv
        if fn == "show":
            self.out.shown.append(recv)
            self.seen.add(id(node))
            return None
        return None

    def numpy_call(self, node: ast.Call, fn: str) -> Lineage | None:
        args = node.args
        src = self.expr(args[0]) if args else None
        for a in [*args[1:], *(k.value for k in node.keywords)]:
            self.expr(a)
        if fn in ("array", "asarray", "ascontiguousarray", "copy", "uint8", "float32"):
            return src
        if fn == "rot90":
            k = _const(_kw(node, "k", 1))
            k = 1.0 if k is None and _kw(node, "k", 1) is None else k
            if k is None:
                self.op(node, "rotate", src)
                return None
            op = G.rot90_op(int(k))
            return self.geometric(node, op, src) if op else src
        if fn == "fliplr":
            return self.geometric(node, "flip_h", src)
        if fn == "flipud":
            return self.geometric(node, "flip_v", src)
        if fn == "flip":
            axis_node = _kw(node, "axis", 1)
            axis = _const(axis_node)
            if axis_node is None or (isinstance(axis_node, ast.Constant) and axis_node.value is None):
                return self.geometric(node, G.array_flip_op({0, 1}) or "rotate180", src)
            op = G.array_flip_op({int(axis)}) if axis is not None else None
            if op is None:
                self.op(node, "flip", src)
                return None
            return self.geometric(node, op, src)
        return None

    def cv2_call(self, node: ast.Call, fn: str) -> Lineage | None:
        args = node.args
        first = 1 if fn == "imshow" else 0
        src = self.expr(args[first]) if len(args) > first else None
        for i, a in enumerate([*args, *(k.value for k in node.keywords)]):
            if i != first:
                self.expr(a)
        if fn == "imshow":
            self.out.shown.append(src)
            self.seen.add(id(node))
            return None
        if fn == "rotate":
            op = _CV2_ROTATE.get(_attr_tail(_kw(node, "rotateCode", 1)) or "")  # type: ignore[arg-type]
            if op is None:
                self.op(node, "rotate", src)
                return None
            return self.geometric(node, op, src)
        if fn == "flip":
            code = _const(_kw(node, "flipCode", 1))
            if code is None:
                self.op(node, "flip", src)
                return None
            return self.geometric(node, G.cv2_flip_op(int(code)), src)
        if fn == "resize":
            return self.resize(node, src, _const_seq(_kw(node, "dsize", 1), 2))
        if fn == "cvtColor":
            code = _kw(node, "code", 1)  # type: ignore[assignment]
            return self.passthrough(node, "convert", src, _attr_tail(code) if code is not None else None)  # type: ignore[arg-type]
        if fn in ("warpAffine", "warpPerspective", "getRotationMatrix2D"):
            self.op(node, "rotate", src)
            return None
        if fn in ("threshold", "adaptiveThreshold", "inRange"):
            self.op(node, "threshold", src)
            return None
        if fn in _CV2_FILTERS:
            return self.passthrough(node, "filter", src)
        if fn in _CV2_DRAW:
            self.op(node, "draw", src)
            return None
        if fn in _CV2_ENHANCE:
            return self.passthrough(node, "enhance", src)
        return None

    # ---- catch-all --------------------------------------------------------------------------------------------

    def sweep(self, tree: ast.AST) -> None:
        """Record by name the operations the lineage pass did not reach (e.g. inside lambdas or comprehensions)."""
        for node in ast.walk(tree):
            if id(node) in self.seen or not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            fn, owner = node.func.attr, _dotted(node.func.value)
            name = None
            if fn == "crop":
                name = "crop"
            elif fn == "rotate" and owner not in CV2:
                angle = _const(node.args[0]) if node.args else None
                name = _angle_op(angle) if angle is not None else "rotate"
            elif owner in NUMPY and fn in ("rot90", "fliplr", "flipud"):
                name = {"rot90": G.rot90_op(1), "fliplr": G.array_flip_op({1}), "flipud": G.array_flip_op({0})}[fn]
            elif owner in CV2 and fn == "rotate":
                name = _CV2_ROTATE.get(_attr_tail(_kw(node, "rotateCode", 1)) or "", "rotate")  # type: ignore[arg-type]
            elif fn == "transpose" and node.args:
                name = _TRANSPOSE.get(_attr_tail(node.args[0]) or "")
            if name:
                self.seen.add(id(node))
                self.out.ops.append(StaticOp(name, node.lineno))


def analyse_code(code: str, image_names: Mapping[str, int], sizes: Sequence[tuple[int, int]] | None = None) -> StaticAnalysis:
    """Operations and shown images of one code block. `image_names` maps the preloaded variables to input
    indices (e.g. {"image_clue_0": 0}); `sizes` are the inputs' (width, height), needed to follow geometry."""
    return _Analyzer(image_names, sizes).run(code)


def with_ops(lineage: Lineage, *ops: str) -> Lineage:
    """A copy of `lineage` with `ops` appended to its chain (tests and callers building regions)."""
    return replace(lineage, ops=(*lineage.ops, *ops))
