"""Rotated and flipped copies of tasks: the "transformed" benchmark variants (OCRBench R90/R180/R270/flip H/flip V).

CodeVision reports OCRBench as the average over the original and five transforms; `transformed_variants` builds
those copies for any tasks (OCRBench, V*, HR-Bench, ...): each image is transformed and written losslessly as PNG,
evidence boxes (and box answers) are mapped into the new coordinates, and the inverse op is added to the required
ops. Transform names are the project's op names (`data.orientation`): `rotate90` is a counter-clockwise quarter
turn, so its copy requires `rotate270`.

Transformed images are named by their content (a hash of the pixels, size and mode), never by task id: two tasks
that share an id in a benchmark file (OCRBench has such ids) or that share an image get the right file each, and a
file that exists already holds exactly these pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from data.orientation import ORIENTATION_OPS, apply_op_pil, inverse, map_box
from rollout.task import Task

ALL_TRANSFORMS: tuple[str, ...] = ORIENTATION_OPS


def parse_transforms(spec: str | Sequence[str] | None) -> list[str]:
    """`"all"`, a comma-separated string or a list of op names; validated."""
    if spec is None or spec == "" or spec == []:
        return []
    items = list(ALL_TRANSFORMS) if spec == "all" else ([s.strip() for s in spec.split(",")] if isinstance(spec, str)
                                                        else list(spec))
    for t in items:
        if t not in ALL_TRANSFORMS:
            raise ValueError(f"unknown transform {t!r}; valid: all, {', '.join(ALL_TRANSFORMS)}")
    return items


def _save_by_content(image: Any, out_dir: Path) -> str:
    """Write `image` losslessly as `<hash of its pixels>.png` in `out_dir` (once); returns the absolute path."""
    h = hashlib.sha1(f"{image.mode}|{image.size[0]}x{image.size[1]}|".encode())
    h.update(image.tobytes())
    path = out_dir / f"{h.hexdigest()[:24]}.png"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        image.save(tmp, format="PNG", compress_level=1)
        tmp.replace(path)
    return str(path.resolve())


def transformed_variants(tasks: Iterable[Task], transforms: Sequence[str], image_dir: str | Path, *,
                         include_original: bool = True) -> list[Task]:
    """For each task: the original (if `include_original`) then one copy per transform, ids `<id>-<transform>`."""
    from PIL import Image

    transforms = parse_transforms(list(transforms))
    out_dir = Path(image_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[Task] = []
    for task in tasks:
        if any(op in ORIENTATION_OPS for op in task.required_ops):
            raise ValueError(f"task {task.id} already requires an orientation op {task.required_ops}; transforming it "
                             "again would need two fixes, which no benchmark defines")
        if include_original:
            out.append(task.model_copy(update={"metadata": {**task.metadata, "transform": "none"}}, deep=True))
        images = []
        for p in task.images:
            with Image.open(p) as im:
                images.append(im.copy())
        for t in transforms:
            paths: list[str] = []
            sizes = []
            for im in images:  # type: ignore[assignment]
                paths.append(_save_by_content(apply_op_pil(im, t), out_dir))
                sizes.append(im.size)
            evidence = [ev.model_copy(update={"box": map_box(ev.box, t, sizes[ev.image])}) for ev in task.evidence]
            answer = task.answer
            if task.answer_type == "box":
                answer = list(map_box(task.answer, t, sizes[0]))  # type: ignore[arg-type]
            out.append(task.model_copy(update={
                "id": f"{task.id}-{t}", "images": paths, "evidence": evidence, "answer": answer,
                "required_ops": [inverse(t), *task.required_ops],
                "metadata": {**task.metadata, "transform": t, "original_id": task.id},
            }, deep=True))
    return out
