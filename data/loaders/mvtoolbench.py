"""MVToolBench (CodeVision, arXiv 2512.03746): multi-tool visual questions (fix the orientation, then crop a tiny
region, then read it).

The published file is the CodeVision team's `mvtoolbench.parquet` (the test file of their veRL recipe,
`recipe/codevision/eval.sh` in https://github.com/ByteDance-BandAI/CodeVision; the dataset is
https://huggingface.co/datasets/kkwok/MVToolBench, whose parquet under `data/` is found too), one row per question
in veRL's RL format:

    prompt         the chat messages (the user turn holds "<image>" and the question)
    images         [{"bytes": <encoded image>, "path": ...}]   the image as given (already transformed)
    reward_model   {"ground_truth": <answer>, "style": ...}
    extra_info     {"answer": ..., "question": ..., "bbox": [x1, y1, x2, y2] (or "bbox_2d"),
                    "transform": ["crop", "rotate_90"], ...}

`transform` lists what was done to make the item: the orientation transform applied to the image, in CodeVision's
names (`rotate_90` / `rotate_180` / `rotate_270`: turned counter-clockwise by that many degrees, as PIL's
`rotate`; `flip_horizontal`, `flip_vertical`), and `crop` when a small region must be cropped. The must-use ops are
CodeVision's: the inverse of the transform (their reward expects `rotate_{360 - d}` for `rotate_d`), then `crop`.
In this project's names (`data.orientation`): `rotate_90` -> `rotate90`, so the task requires `rotate270`.

`bbox` is where the answer is, as x1, y1, x2, y2 pixels. Which image's coordinates they are in is not stated by the
publishers: in the upright image's (the source annotation's, and the frame of crops taken after the orientation is
fixed, which CodeVision's reward compares with it), or in the image as given (the dataset card's example, a text line
12 px wide and 204 px tall on a `rotate_90` item, looks like a turned line). Every evidence box of a task is in the
given image's coordinates, so the loader decides per file (`bbox_frame="auto"`, the default): upright when every
box, mapped through the item's transform, fits its image; else given when every box fits as it is; else a
LoaderError naming the first row that fits neither. `bbox_frame="upright"` / `"given"` force one reading (and
name the row that does not fit); `metadata["bbox_frame"]` records the reading used. Images are written once to
`image_dir` (default `<file stem>_images/` next to the parquet), named by content hash.

Scoring of the published file (`metadata["scoring"] = "mvtoolbench"`, `rewards.codevision_scoring`): CodeVision's
rule-based answer check (numbers equal, strings equal, the last letter or number read from the answer); CodeVision
asks an LLM judge when the rules fail, which here is the answer-accuracy component's optional `judge`.

Also read, for copies converted by hand: `MVToolBench.jsonl` / `.json` with one object per item, e.g.

    {"id": "mvt-0001", "image": "images/0001.jpg", "question": "...", "options": [...], "answer": "A",
     "transform": "rotate90", "tools": ["rotate270", "crop"], "bbox": [812, 1440, 905, 1478]}

(`transform` in our names or CodeVision's, `tools` the must-use ops, `bbox` in the given image's pixels;
`bbox_format="xywh"` reads [x, y, w, h]; aliases: `image_path`, `choices`, `label`, `gt_box`, `required_tools`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, parse_option_lines, \
    progress_bar, require, take, write_image_bytes
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
              "rotate_90": "rotate90", "rotate_180": "rotate180", "rotate_270": "rotate270",
              "none": None, "original": None, "": None}
PARQUET_COLUMNS = ("prompt", "images", "reward_model", "extra_info")


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
             bbox_format: str = "xyxy", bbox_frame: str = "auto", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mvtoolbench: unknown option(s) {', '.join(options)}; valid: bbox_format, bbox_frame")
        if bbox_format not in ("xyxy", "xywh"):
            raise LoaderError(f"mvtoolbench: bbox_format must be xyxy or xywh, got {bbox_format!r}")
        if bbox_frame not in ("auto", "upright", "given"):
            raise LoaderError(f"mvtoolbench: bbox_frame must be auto, upright or given, got {bbox_frame!r}")
        if path.is_dir():
            cands = [path / "mvtoolbench.parquet", *sorted(path.glob("*.parquet")), *sorted(path.glob("data/*.parquet")),
                     path / "MVToolBench.jsonl", path / "MVToolBench.json"]
            file = next((c for c in cands if c.exists()), None)
            if file is None:
                raise LoaderError(f"mvtoolbench: {path} holds neither mvtoolbench.parquet (the published file) nor "
                                  "MVToolBench.jsonl / MVToolBench.json; see the docstring of "
                                  "data/loaders/mvtoolbench.py for the layout")
        else:
            file = path
        require(file, "mvtoolbench.parquet (CodeVision's veRL file), MVToolBench.jsonl or MVToolBench.json", self.name)
        if file.suffix == ".parquet":
            out_dir = image_dir or self.default_image_dir(file)
            return parquet_tasks(file, out_dir, limit=limit, progress=progress, bbox_frame=bbox_frame)
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


def _codevision_transform(value: Any, where: str) -> tuple[str | None, bool]:
    """(our orientation op applied to the image or None, whether a crop is required) from `extra_info.transform`."""
    items = _as_list(value)
    applied, crop = None, False
    for item in items:
        op = _op(item, where)
        if op == "crop":
            crop = True
        elif op is not None:
            if applied is not None:
                raise LoaderError(f"{where}: transform lists two orientation ops ({applied}, {op}); expected one")
            applied = op
    return applied, crop


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)] if value else []


def _prompt_question(prompt: Any) -> str | None:
    """The user's text in a veRL prompt (a list of chat messages), without image placeholders."""
    if isinstance(prompt, str):
        return prompt.replace("<image>", "").strip() or None
    for msg in prompt or []:
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            return str(content).replace("<image>", "").strip() or None
    return None


def _fmt(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _fits(b: list[float], size: tuple[int, int]) -> bool:
    return not (b[0] < -1 or b[1] < -1 or b[2] > size[0] + 1 or b[3] > size[1] + 1 or b[2] <= b[0] or b[3] <= b[1])


def _in_frame(box: list[float], applied: str | None, size: tuple[int, int], frame: str) -> list[float]:
    """`box` read in `frame`'s coordinates, mapped into the given image's (the upright frame is turned by `applied`)."""
    from data.orientation import map_box, output_size

    if applied is not None and frame == "upright":
        return list(map_box(box, applied, output_size(size, inverse(applied))))
    return box


def choose_frame(items: list[tuple[str, list[float], str | None, tuple[int, int]]], requested: str, file: Path) -> str:
    """The frame the file's boxes are in: `requested`, or for `auto` the one in which every box fits its image
    (upright first, then given). A box that fits no frame asked for is a LoaderError naming its row."""
    frames = ["upright", "given"] if requested == "auto" else [requested]
    for frame in frames:
        if all(_fits(_in_frame(b, applied, size, frame), size) for _, b, applied, size in items):
            return frame
    frame = frames[0]
    where, b, applied, size = next(i for i in items if not _fits(_in_frame(i[1], i[2], i[3], frame), i[3]))
    if requested == "auto":
        raise LoaderError(f"{where}: bbox {_fmt(b)} fits the {size[0]}x{size[1]} image as given in neither the upright nor "
                          f"the given image's coordinates (transform {applied or 'none'}); expected x1, y1, x2, y2 in "
                          f"pixels ({file})")
    other = "given" if frame == "upright" else "upright"
    raise LoaderError(f"{where}: bbox {_fmt(b)} (read in the {frame} image's coordinates) does not fit the "
                      f"{size[0]}x{size[1]} image as given; if the file's boxes are in the {other} image's "
                      f"coordinates, pass bbox_frame={other} (or auto)")


def parquet_tasks(file: Path, out_dir: Path, *, limit: int | None, progress: bool, bbox_frame: str) -> list[Task]:
    """Tasks of CodeVision's `mvtoolbench.parquet` (see the module docstring)."""
    from PIL import Image

    staged = []
    rows = iter_parquet_rows([file], list(PARQUET_COLUMNS))
    for n, row in enumerate(progress_bar(take(rows, limit), progress, "mvtoolbench")):
        where = f"{file}: row {n}"
        extra = row.get("extra_info") or {}
        if not isinstance(extra, dict):
            raise LoaderError(f"{where}: extra_info must be a struct with answer, question, bbox, transform")
        truth = (row.get("reward_model") or {}).get("ground_truth")
        answer = truth if truth not in (None, "") else extra.get("answer")
        question = extra.get("question") or _prompt_question(row.get("prompt"))
        images = row.get("images") or []
        if answer in (None, "") or not question or not images:
            raise LoaderError(f"{where}: needs an answer (reward_model.ground_truth or extra_info.answer), a "
                              "question (extra_info.question or the prompt) and an image (images)")
        paths = [write_image_bytes(image_cell_bytes(cell), out_dir) for cell in images]
        with Image.open(paths[0]) as im:
            size = im.size
        applied, crop = _codevision_transform(extra.get("transform"), where)
        box = extra.get("bbox", extra.get("bbox_2d"))
        b = [float(v) for v in box] if box is not None and len(box) == 4 else None
        staged.append((n, where, extra, str(answer).strip(), str(question), paths, size, applied, crop, b))
    frame = choose_frame([(w, b, a, s) for _, w, _, _, _, _, s, a, _, b in staged if b is not None], bbox_frame, file)
    tasks = []
    for n, _where, extra, answer, question, paths, size, applied, crop, b in staged:
        evidence = []
        if b is not None:
            g = _in_frame(b, applied, size, frame)
            evidence = [{"box": [max(0.0, g[0]), max(0.0, g[1]), min(float(size[0]), g[2]), min(float(size[1]), g[3])],
                         "image": 0}]
        required = ([inverse(applied)] if applied else []) + (["crop"] if crop and evidence else [])
        choices = parse_option_lines(question) or None
        is_letter = choices is not None and len(answer) == 1 and answer.upper() in LETTERS[: len(choices)]
        item_id = extra.get("index", extra.get("id", n))
        tasks.append(Task(
            id=f"mvtoolbench-{item_id}", images=paths, question=question,
            answer=answer.upper() if is_letter else answer, answer_type="choice" if is_letter else "text",
            choices=choices if is_letter else None, evidence=evidence, required_ops=required,
            source="mvtoolbench", split="test",
            metadata={"transform": applied or "none", "codevision_transform": _as_list(extra.get("transform")),
                      "task_type": "mvtoolbench", "image_size": list(size), "bbox_frame": frame,
                      "dataset_name": extra.get("dataset_name"), "scoring": "mvtoolbench", "answer_text": answer}))
    return tasks
