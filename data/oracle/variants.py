"""The oracle trajectory variants (CodeVision's five SFT task types) and which tasks each applies to.

- `single_tool`: the one tool the task needs: undo an orientation that is visible in the input (legible text), or
  a grid search that ends in one zoom (overview, candidate cells, zoom), or, for symbolic tasks, analysis code;
- `multi_tool`: a chain of tools: search, zoom, then undo the orientation the zoom reveals; fix the orientation then
  zoom on the asked line; or search and zoom with contrast enhancement;
- `multi_crop`: a search that looks at more candidates and zooms into a wrong one before the right one;
- `error_recovery`: a first block that fails for a real reason (slicing a PIL image like an array, passing a PIL
  image to OpenCV, a wrong variable name, a helper used before it is defined), the error comes back, then a fix;
- `no_tool`: the answer directly, for tasks that need no tool (legible untransformed text, symbolic items).

What a variant does is decided from the task's ground truth alone (`required_ops`, `evidence`, metadata of symbolic
tasks, the text size when a generator recorded it), so tasks from files (and benchmark tasks with evidence boxes)
get oracle trajectories too. Whether text is legible is judged at the model's input resolution (`max_pixels`,
`data.resolution`).
"""

from __future__ import annotations

from data.resolution import DEFAULT_MAX_PIXELS, legible
from rollout.task import Task
from sandbox.result import ORIENTATION_OPS

VARIANTS: tuple[str, ...] = ("single_tool", "multi_tool", "multi_crop", "error_recovery", "no_tool")


def orientation_op(task: Task) -> str | None:
    """The orientation op the task requires (None if none)."""
    return next((op for op in task.required_ops if op in ORIENTATION_OPS), None)


def needs_crop(task: Task) -> bool:
    return "crop" in task.required_ops


def is_symbolic(task: Task) -> bool:
    return bool(task.metadata.get("symbolic_kind"))


def text_legible(task: Task, max_pixels: int = DEFAULT_MAX_PIXELS) -> bool:
    """Whether the task's text can be read in the input as the model receives it: from the glyph height a generator
    recorded (`metadata["glyph_px"]`, else 0.7 x `font_size`); tasks without that record (benchmark images) count
    as legible."""
    meta = task.metadata or {}
    glyph = meta.get("glyph_px") or (0.7 * float(meta["font_size"]) if meta.get("font_size") else None)
    size = meta.get("image_size")
    if glyph is None or not size:
        return True
    return legible(float(glyph), (int(size[0]), int(size[1])), max_pixels)


def applicable_variants(task: Task, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[str]:
    """The variants that make sense for `task`, in `VARIANTS` order."""
    orient, crop, ev = orientation_op(task), needs_crop(task), bool(task.evidence)
    if is_symbolic(task):
        return ["single_tool", "error_recovery", "no_tool"]
    if crop and not ev:
        return []  # a crop is required but nothing says where: no honest oracle
    readable = text_legible(task, max_pixels)
    if not task.required_ops:
        return ["no_tool"] if readable else []
    if orient is not None and not crop:
        if not readable:
            return []  # the orientation cannot be seen and no crop is required: the task is mislabelled
        return ["single_tool", *(["multi_tool"] if ev else []), "error_recovery"]
    if orient is None:
        return ["single_tool", "multi_tool", "multi_crop", "error_recovery"]
    return ["multi_tool", "multi_crop", "error_recovery"]


def check_variant(name: str) -> str:
    if name not in VARIANTS:
        raise ValueError(f"unknown oracle variant {name!r}; valid variants: {', '.join(VARIANTS)}")
    return name
