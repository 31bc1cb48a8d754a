"""MVToolBench (CodeVision, arXiv 2512.03746): multi-tool visual questions (fix the orientation, then crop a tiny
region, then read it).

Status of the published format: at the time of writing the CodeVision authors have announced MVToolBench but their
repository (https://github.com/ByteDance-BandAI/CodeVision) does not yet contain its files or a description of
their fields. This loader therefore reads the layout below, which holds everything the paper says an item has
(image, question, options, answer, the transform applied, the must-use tools, the target box); field names have
aliases so that a release using common names (`image_path`, `options`/`choices`, `answer`/`label`, `bbox`/
`gt_box`, `tools`/`required_tools`) loads without changes. When the official files appear, check them against
this docstring.

    mvtoolbench/
      MVToolBench.jsonl      one item per line (or MVToolBench.json: a list), e.g.
        {"id": "mvt-0001", "image": "images/0001.jpg", "question": "What is the plate number of the van?",
         "options": ["KX 4521", "KX 4251", "KY 4521", "KX 4512"], "answer": "A",
         "transform": "rotate90", "tools": ["rotate270", "crop"], "bbox": [812, 1440, 905, 1478]}
      images/...

`transform` is the op applied to the original image (our names: rotate90 = counter-clockwise, `data.orientation`);
`tools` the must-use ops in our names (accepted aliases: rot90/rot180/rot270, hflip/vflip, flip_horizontal,
flip_vertical, zoom/zoom_in for crop). Without `tools`, the required ops are the inverse of `transform`, plus `crop`
when a box is given. `bbox` is (x1, y1, x2, y2) in the given image's pixels; `bbox_format="xywh"` reads [x, y, w, h].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, parse_option_lines, progress_bar, require, take
from data.orientation import inverse
from data.question_text import LETTERS, with_choices
from rollout.task import REQUIRED_OPS, Task

ALIASES = {
    "id": ("id", "qid", "question_id", "index"),
    "image": ("image", "image_path", "img", "img_path"),
    "question": ("question", "query", "prompt", "text"),
    "options": ("options", "choices"),
    "answer": ("answer", "label", "gt_answer", "groundtruth"),
    "transform": ("transform", "transformation", "orientation"),
    "tools": ("tools", "required_tools", "required_ops", "must_use_tools"),
    "bbox": ("bbox", "gt_box", "box", "target_box"),
}
OP_ALIASES = {"rot90": "rotate90", "rot180": "rotate180", "rot270": "rotate270", "hflip": "flip_h", "vflip": "flip_v",
              "flip_horizontal": "flip_h", "flip_vertical": "flip_v", "zoom": "crop", "zoom_in": "crop",
              "none": None, "original": None, "": None}


def _get(item: dict[str, Any], key: str) -> Any:
    for k in ALIASES[key]:
        if k in item and item[k] is not None:
            return item[k]
    return None


def _op(name: Any, where: str) -> str | None:
    if name is None:
        return None
    n = str(name).strip().lower()
    n = OP_ALIASES.get(n, n)  # type: ignore[assignment]
    if n is not None and n not in REQUIRED_OPS:
        raise LoaderError(f"{where}: unknown op {name!r}; valid: {', '.join(REQUIRED_OPS)} (or their aliases "
                          f"{', '.join(k for k in OP_ALIASES if k)})")
    return n


class MVToolBenchLoader(Loader):
    name: ClassVar[str] = "mvtoolbench"
    description: ClassVar[str] = "MVToolBench: multi-tool chains (orientation fix + tiny crop); see the format note"
    homepage: ClassVar[str] = "https://github.com/ByteDance-BandAI/CodeVision"

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             bbox_format: str = "xyxy", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mvtoolbench: unknown option(s) {', '.join(options)}; valid: bbox_format")
        if bbox_format not in ("xyxy", "xywh"):
            raise LoaderError(f"mvtoolbench: bbox_format must be xyxy or xywh, got {bbox_format!r}")
        if path.is_dir():
            cands = [path / "MVToolBench.jsonl", path / "MVToolBench.json"]
            file = next((c for c in cands if c.exists()), cands[0])
        else:
            file = path
        require(file, "MVToolBench.jsonl or MVToolBench.json", self.name)
        if file.suffix == ".jsonl":
            items = []
            for n, line in enumerate(file.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        items.append((n, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise LoaderError(f"{file}:{n}: not valid JSON: {exc.msg}") from exc
        else:
            items = list(enumerate(json.loads(file.read_text()), 1))
        tasks = []
        for n, item in progress_bar(take(items, limit), progress, "mvtoolbench", total=len(items)):
            where = f"{file}:{n}" if file.suffix == ".jsonl" else f"{file}: item {n}"
            image_rel, question, answer = _get(item, "image"), _get(item, "question"), _get(item, "answer")
            if image_rel is None or question is None or answer is None:
                raise LoaderError(f"{where}: needs image, question and answer (aliases: {ALIASES['image']}, "
                                  f"{ALIASES['question']}, {ALIASES['answer']})")
            image = require(file.parent / str(image_rel), f"the image {image_rel}", self.name)
            options_ = _get(item, "options")
            choices = [str(c) for c in options_] if options_ else parse_option_lines(str(question)) or None
            answer = str(answer).strip()
            if choices:
                if answer in choices and not (len(answer) == 1 and answer in LETTERS[: len(choices)]):
                    answer = LETTERS[choices.index(answer)]
                if options_ and "(A)" not in str(question):
                    question = with_choices(str(question), choices)
            transform = _op(_get(item, "transform"), where)
            tools = _get(item, "tools")
            box = _get(item, "bbox")
            evidence = []
            if box is not None:
                b = [float(v) for v in box]
                if bbox_format == "xywh":
                    b = [b[0], b[1], b[0] + b[2], b[1] + b[3]]
                evidence = [{"box": b, "image": 0}]
            if tools is not None:
                required = [op for op in (_op(t, where) for t in tools) if op is not None]
            else:
                required = ([inverse(transform)] if transform and transform != "crop" else []) + (["crop"] if evidence else [])
            tasks.append(Task(
                id=f"mvtoolbench-{_get(item, 'id') if _get(item, 'id') is not None else n}",
                images=[str(image.resolve())], question=str(question), answer=answer,
                answer_type="choice" if choices else "text", choices=choices, evidence=evidence,
                required_ops=list(dict.fromkeys(required)), source="mvtoolbench", split="test",
                metadata={"transform": transform or "none", "task_type": "mvtoolbench"}))
        return tasks
