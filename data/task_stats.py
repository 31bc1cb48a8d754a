"""Statistics of a task set that say whether its tasks need their tools: how small the evidence is, and whether it
can be made out in the input as the model receives it (`max_pixels`). `codevl data stats` prints them.

For each task with an evidence box: its share of the image area, and its size in pixels after the processor's
resize (`data.resolution`): a generator's record of what decides recognition (`target_seen_px` of visual-search
targets: glyph height or shape side; `seen_glyph_px` of text), rescaled from the generator's `max_pixels` to this
one; for other tasks (benchmarks) the shorter side of the evidence box after the resize. Legible means at
least `LEGIBLE_PX`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from data.resolution import DEFAULT_MAX_PIXELS, LEGIBLE_PX, model_scale, seen_px
from rollout.task import Task


def _size(task: Task) -> tuple[int, int] | None:
    size = (task.metadata or {}).get("image_size")
    if size:
        return int(size[0]), int(size[1])
    try:
        from PIL import Image

        with Image.open(task.images[0]) as im:  # reads the header only
            return im.size
    except (OSError, IndexError):
        return None


def _summary(values: Sequence[float], digits: int) -> dict[str, float]:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits)}


def evidence_stats(tasks: Sequence[Task], max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Area share (percent) and seen size (pixels at `max_pixels`) of the first evidence box of each task, and how
    many are legible without a crop; empty when no task has evidence."""
    areas, seen, legible_count = [], [], 0
    for t in tasks:
        if not t.evidence:
            continue
        size = _size(t)
        if size is None:
            continue
        x1, y1, x2, y2 = t.evidence[0].box
        areas.append(100.0 * (x2 - x1) * (y2 - y1) / (size[0] * size[1]))
        meta = t.metadata or {}
        recorded = meta.get("target_seen_px", meta.get("seen_glyph_px"))
        recorded_at = meta.get("max_pixels")
        if recorded is not None and recorded_at:  # rescale the generator's figure to this resolution
            px = float(recorded) * model_scale(size, max_pixels) / model_scale(size, int(recorded_at))
        else:
            px = seen_px(min(x2 - x1, y2 - y1), size, max_pixels)
        seen.append(px)
        legible_count += px >= LEGIBLE_PX
    if not areas:
        return {}
    return {"max_pixels": max_pixels, "with_evidence_measured": len(areas),
            "target_area_pct": _summary(areas, 5), "target_seen_px": _summary(seen, 2),
            "legible_without_crop": legible_count, "needs_crop_to_read": len(areas) - legible_count}
