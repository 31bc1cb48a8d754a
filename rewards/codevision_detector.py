"""CodeVision's released operation detector, reproduced: which ops a code block "used" and the crop boxes it
"made", read from the code text alone, exactly as the released reward sees them (ByteDance-BandAI/CodeVision,
verl/utils/reward_score/tool_use_judge.py `ToolUseJudgeClient.heuristic_parse`, called by tool_agent_loop.py
`_handle_processing_tools_state` on every tool call before it runs).

`ops_source: released` on the tool-use components selects it. It differs from this package's own analysis
(`rewards.code_ops`, and the sandbox's trace) on purpose, because the released reward depends on these quirks:

- crop is used only when a box could be read: the first argument of a `.crop(...)` call evaluated from number
  literals, arithmetic, `int/float/abs/round/min/max/tuple/list` and assignments on earlier lines (anywhere in
  the block, loops and functions included), or a literal `.crop((x1, y1, x2, y2))`; `img.crop(box)` with a box
  computed from `img.size` is not a crop. Boxes are the literal numbers of the code (the coordinates of whatever
  image was cropped), deduplicated, never clipped or mapped to the input image;
- rotations: `.rotate(<number expression>[, ...])` within 5 degrees of 90 / 180 / 270 (counter-clockwise, PIL),
  `transpose(Image.ROTATE_90|180|270)`, `np.rot90(a)` / `np.rot90(a, k=<int>)` (a positional k is not read: it
  counts as k = 1), `cv2.rotate(a, cv2.ROTATE_*)`; `Image.Transpose.ROTATE_90`, `np.fliplr` and `cv2.flip` are not
  detected;
- flips: `ImageOps.mirror` / `transpose(Image.FLIP_LEFT_RIGHT)`, `ImageOps.flip` / `transpose(Image.FLIP_TOP_BOTTOM)`;
- other ops, named as released (every one is non-core, so it counts for r_emerge): ImageEnhance
  brightness / contrast / sharpness / color (`_up` above a factor of 1.05, `_down` below 0.95), ImageFilter blurs,
  sharpen, smooth, detail, edges, `convert("L")` and `cv2.cvtColor(..., cv2.COLOR_BGR2GRAY|COLOR_RGB2GRAY)`
  (grayscale), `.resize((w, h))` with the size as the only argument and `ImageOps.fit(img, (w, h))` (resize),
  ImageOps autocontrast / equalize / invert / solarize / posterize, OpenCV blurs, Canny / Sobel / Laplacian,
  `convertScaleAbs(alpha=, beta=)`, erode, dilate, equalizeHist;
- the patterns read the whole text, comments and strings included.

The released client may ask an LLM when the patterns find nothing and a judge server is configured; that path is
not reproduced (it needs the server, and its answer is not deterministic).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from rewards.boxes import Box

# Released transform names of the six core ops -> this package's op names (sandbox.result.CORE_OPS).
CORE_NAMES = {"rotate_90": "rotate90", "rotate_180": "rotate180", "rotate_270": "rotate270",
              "flip_horizontal": "flip_h", "flip_vertical": "flip_v", "crop": "crop"}

_NUMBER_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: float(a // b), ast.Mod: lambda a, b: a % b,
}

Value = float | list[float] | None


def number(text: str) -> float | None:
    """`text` evaluated as a number expression without names or calls: literals (a bool is an int, as released),
    unary +/-, + - * / // % (None when it is not one, or on an arithmetic error)."""
    try:
        return _as_float(_evaluate(ast.parse(text.strip(), mode="eval").body, {}, calls=False))
    except (SyntaxError, ValueError):
        return None


def _as_float(v: Value) -> float | None:
    return v if isinstance(v, float) else None


def _evaluate(node: ast.AST, env: dict[str, float | list[float]], *, calls: bool = True) -> Value:
    """A number or a list of numbers from literals, names bound in `env`, arithmetic, tuples / lists and (with
    `calls`) the calls int, float, abs, round, min, max, tuple, list; None when the expression is anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _as_float(_evaluate(node.operand, env, calls=calls))
        return None if v is None else (v if isinstance(node.op, ast.UAdd) else -v)
    if isinstance(node, ast.BinOp) and type(node.op) in _NUMBER_OPS:
        a, b = _as_float(_evaluate(node.left, env, calls=calls)), _as_float(_evaluate(node.right, env, calls=calls))
        if a is None or b is None:
            return None
        try:
            return _NUMBER_OPS[type(node.op)](a, b)
        except (ArithmeticError, ValueError):
            return None
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_evaluate(e, env, calls=calls) for e in node.elts]
        floats = [_as_float(v) for v in items]
        return None if any(v is None for v in floats) else [v for v in floats if v is not None]
    if isinstance(node, ast.Call) and calls:
        return _evaluate_call(node, env)
    return None


def _evaluate_call(node: ast.Call, env: dict[str, float | list[float]]) -> Value:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    args = [_evaluate(a, env) for a in node.args]
    try:
        if name in ("int", "float", "abs"):
            x = _as_float(args[0]) if args else None
            if x is None:
                return None
            return float(int(x)) if name == "int" else (x if name == "float" else abs(x))
        if name == "round":
            x = _as_float(args[0]) if args else None
            if x is None:
                return None
            if len(args) >= 2 and args[1] is not None:
                digits = _as_float(args[1])
                return None if digits is None else float(round(x, int(digits)))
            return float(round(x))
        if name in ("min", "max"):
            nums = [_as_float(a) for a in args]
            if not nums or any(v is None for v in nums):
                return None
            vals = [v for v in nums if v is not None]
            return float(min(vals) if name == "min" else max(vals))
        if name in ("tuple", "list"):
            if len(node.args) == 1 and isinstance(node.args[0], (ast.Tuple, ast.List)) and isinstance(args[0], list):
                return list(args[0])
            nums = [_as_float(a) for a in args]
            if nums and all(v is not None for v in nums):
                return [v for v in nums if v is not None]
            return None
    except (ArithmeticError, ValueError, OverflowError):
        return None
    return None


def _bind(node: ast.AST, env: dict[str, float | list[float]]) -> None:
    """Replay one assignment into `env` (values that cannot be evaluated leave names as they were)."""
    if isinstance(node, ast.Assign):
        value = _evaluate(node.value, env)
        if value is None:
            return
        for target in node.targets:
            if isinstance(target, ast.Name):
                env[target.id] = value
            elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, list):
                names = [e.id for e in target.elts if isinstance(e, ast.Name)]
                if len(names) == len(value):
                    env.update(zip(names, value, strict=True))
    elif isinstance(node, ast.AnnAssign):
        if node.value is not None and isinstance(node.target, ast.Name):
            value = _evaluate(node.value, env)
            if value is not None:
                env[node.target.id] = value
    elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and type(node.op) in _NUMBER_OPS:
        cur, right = _as_float(env.get(node.target.id)), _as_float(_evaluate(node.value, env))
        if cur is not None and right is not None:
            try:
                env[node.target.id] = _NUMBER_OPS[type(node.op)](cur, right)
            except (ArithmeticError, ValueError):
                pass


def _ast_crop_boxes(code: str) -> list[Box]:
    """Boxes of `.crop(<arg>)` calls whose first argument evaluates to four numbers, with the assignments of the
    earlier lines replayed in line order."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    nodes = list(ast.walk(tree))
    assigns = sorted((n for n in nodes if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))),
                     key=lambda n: (n.lineno, n.col_offset))
    calls = sorted((n for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr == "crop" and n.args), key=lambda n: (n.lineno, n.col_offset))
    boxes: list[Box] = []
    for call in calls:
        env: dict[str, float | list[float]] = {}
        for a in assigns:
            if a.lineno >= call.lineno:
                break
            _bind(a, env)
        value = _evaluate(call.args[0], env)
        if isinstance(value, list) and len(value) == 4:
            boxes.append((value[0], value[1], value[2], value[3]))
    return boxes


_NUM = r"([-+]?[\d.]+)"
_LITERAL_CROP = re.compile(r"\.crop\(\(\s*" + r"\s*,\s*".join([_NUM] * 4) + r"\s*\)\)")


def _literal_crop_boxes(code: str) -> list[Box]:
    out: list[Box] = []
    for m in _LITERAL_CROP.finditer(code):
        try:
            x1, y1, x2, y2 = (float(g) for g in m.groups())
        except ValueError:
            continue
        out.append((x1, y1, x2, y2))
    return out


def crop_boxes(code: str) -> list[Box]:
    """The crop boxes the released detector reads from `code` (AST boxes, then literal ones; duplicates after
    rounding to 6 decimals removed)."""
    seen: set[Box] = set()
    out: list[Box] = []
    for box in [*_ast_crop_boxes(code), *_literal_crop_boxes(code)]:
        key: Box = (round(box[0], 6), round(box[1], 6), round(box[2], 6), round(box[3], 6))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def _near(angle: float, target: float) -> bool:
    return abs((angle - target + 180.0) % 360.0 - 180.0) <= 5.0


_ROTATE_CALL = re.compile(r"\.rotate\(\s*([^,\)]+)\s*(?:,\s*[^)]*)?\)")
_ROT90 = re.compile(r"np\.rot90\(\s*[^,\s)]+\s*(?:,\s*k\s*=\s*([-+]?\d+))?")


def _rotations(code: str) -> list[str]:
    used: list[str] = []
    for m in _ROTATE_CALL.finditer(code):
        angle = number(m.group(1))
        if angle is None:
            continue
        angle %= 360.0
        for target, name in ((90.0, "rotate_90"), (180.0, "rotate_180"), (270.0, "rotate_270")):
            if _near(angle, target):
                used.append(name)
                break
    for deg in ("90", "180", "270"):
        if re.search(rf"transpose\(\s*Image\.ROTATE_{deg}\s*\)", code):
            used.append(f"rotate_{deg}")
    for m in _ROT90.finditer(code):
        k = (int(m.group(1)) if m.group(1) is not None else 1) % 4
        if k:
            used.append(f"rotate_{90 * k}")
    for code_name, name in (("ROTATE_90_CLOCKWISE", "rotate_270"), ("ROTATE_180", "rotate_180"),
                            ("ROTATE_90_COUNTERCLOCKWISE", "rotate_90")):
        if re.search(rf"cv2\.rotate\(\s*[^,)]*\s*,\s*cv2\.{code_name}\s*\)", code):
            used.append(name)
    return used


def _flips(code: str) -> list[str]:
    used: list[str] = []
    if re.search(r"ImageOps\.mirror|transpose\(\s*Image\.FLIP_LEFT_RIGHT\s*\)", code):
        used.append("flip_horizontal")
    if re.search(r"ImageOps\.flip|transpose\(\s*Image\.FLIP_TOP_BOTTOM\s*\)", code):
        used.append("flip_vertical")
    return used


def _graded(base: str, factor: float | None, up: float, down: float) -> str:
    if factor is None:
        return base
    return f"{base}_up" if factor > up else (f"{base}_down" if factor < down else base)


_ENHANCE = re.compile(r"ImageEnhance\.(Brightness|Contrast|Sharpness|Color)\s*\(\s*[^)]+\s*\)\s*\.enhance\(\s*([^\)]+?)\s*\)")
_IMAGE_FILTER = re.compile(r"ImageFilter\.([A-Za-z_]+)(?:\s*\(\s*([^\)]*)\s*\))?")
_FILTER_NAMES = {"BLUR": "blur", "BOXBLUR": "blur", "GAUSSIANBLUR": "gaussian_blur", "MEDIANFILTER": "median_blur",
                 "SHARPEN": "sharpen", "UNSHARPMASK": "sharpen", "SMOOTH": "smooth", "SMOOTH_MORE": "smooth",
                 "DETAIL": "detail", "FIND_EDGES": "edge_detect"}
# (pattern, released name), searched once each, in the released order.
_SIMPLE = [
    (r"\.convert\(\s*['\"]L['\"]\s*\)", "grayscale"),
    (r"cv2\.cvtColor\(\s*[^,]+,\s*cv2\.COLOR_(?:BGR|RGB)2GRAY\s*\)", "grayscale"),
    (r"\.resize\(\s*\(\s*[^\)]+\)\s*\)", "resize"),
    (r"ImageOps\.fit\(\s*[^,]+,\s*\(\s*[^\)]+\)\s*\)", "resize"),
    *[(rf"ImageOps\.{f}\(\s*[^\)]*\)", f) for f in ("autocontrast", "equalize", "invert", "solarize", "posterize")],
    (r"cv2\.GaussianBlur\(\s*[^\)]*\)", "gaussian_blur"),
    (r"cv2\.(?:blur|boxFilter)\(\s*[^\)]*\)", "blur"),
    (r"cv2\.medianBlur\(\s*[^\)]*\)", "median_blur"),
    (r"cv2\.Canny\(\s*[^\)]*\)", "edge_detect"),
    (r"cv2\.Sobel\(\s*[^\)]*\)\s*|\s*cv2\.Laplacian\(\s*[^\)]*\)", "edge_detect"),
]
_SCALE_ABS = re.compile(r"cv2\.convertScaleAbs\(\s*[^\)]*\)")
_MORPHOLOGY = [(r"cv2\.erode\(\s*[^\)]*\)", "erode"), (r"cv2\.dilate\(\s*[^\)]*\)", "dilate"),
               (r"cv2\.equalizeHist\(\s*[^\)]*\)", "equalize")]


def _others(code: str) -> list[str]:
    used: list[str] = []
    for m in _ENHANCE.finditer(code):
        used.append(_graded(m.group(1).lower(), number(m.group(2)), 1.05, 0.95))
    for m in _IMAGE_FILTER.finditer(code):
        name = m.group(1).upper()
        if name in _FILTER_NAMES:
            used.append(_FILTER_NAMES[name])
        elif name.startswith("EDGE_ENHANCE"):
            used.append("edge_enhance")
    used += [name for pattern, name in _SIMPLE if re.search(pattern, code)]
    for m in _SCALE_ABS.finditer(code):
        alpha = re.search(r"alpha\s*=\s*([-+]?\d+(?:\.\d+)?)", m.group(0))
        beta = re.search(r"beta\s*=\s*([-+]?\d+(?:\.\d+)?)", m.group(0))
        if alpha:
            used.append(_graded("contrast", float(alpha.group(1)), 1.05, 0.95))
        if beta:
            used.append(_graded("brightness", float(beta.group(1)), 0.5, -0.5))
    used += [name for pattern, name in _MORPHOLOGY if re.search(pattern, code)]
    return used


@dataclass(frozen=True)
class DetectedUse:
    """What the released detector sees in one code block: op names (core ops in this package's names, the
    others as released, in first-detection order) and the literal crop boxes."""

    ops: tuple[str, ...]
    boxes: tuple[Box, ...]


def detect(code: str) -> DetectedUse:
    """The ops and crop boxes of `code` as CodeVision's released reward reads them (see the module docstring)."""
    boxes = crop_boxes(code)
    names = _rotations(code) + _flips(code) + _others(code) + (["crop"] if boxes else [])
    ops = tuple(dict.fromkeys(CORE_NAMES.get(n, n) for n in names))
    return DetectedUse(ops, tuple(boxes))
