"""Task files: JSONL of `Task` rows with image paths relative to the file.

    tasks = read_tasks("train/tasks.jsonl")                    # raises TaskFileError listing every bad row
    result = read_tasks_report("tasks.jsonl", skip_invalid=True, rejects_path="rejected.jsonl")
    write_tasks("out/tasks.jsonl", tasks)                      # image paths written relative to out/

Every row is validated: the JSON itself, every field of the `Task` model (`rollout.task`), and each image: the file
must exist and open as an image, and evidence boxes must lie inside it. A problem is reported as
`file:line: field: message (what to do)`. Nothing is skipped silently: by default any bad row is an error that lists
all the problems found; with `skip_invalid=True` the bad rows are left out, counted, and written with their errors
to a rejects file, so that they can be fixed and re-read.

In memory a `Task` holds image paths that open from the current directory (absolute after reading); on disk they are
relative to the JSONL file's folder, so a dataset directory can be moved as a whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rollout.task import Task

ImageCheck = Literal["none", "exists", "header", "decode"]
IMAGE_CHECKS: tuple[str, ...] = ("none", "exists", "header", "decode")


@dataclass(frozen=True)
class RowProblem:
    """One problem with one row: where (file, line, field) and what."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class TaskFileError(ValueError):
    """A task file has bad rows; `problems` lists every one (the message shows the first 20)."""

    def __init__(self, path: str | Path, problems: list[RowProblem], *, hint: str = "") -> None:
        self.path = str(path)
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        rows = len({p.line for p in problems})
        hint = hint or ("fix these rows, or read with skip_invalid=True (CLI: --skip-invalid) to leave them out and "
                        "write them to a rejects file")
        super().__init__(f"invalid task file {path}: {len(problems)} problem(s) in {rows} row(s):\n{shown}{more}\n{hint}")


@dataclass
class TaskFileReport:
    """What `read_tasks_report` found: the valid tasks, and the rejected rows with their problems."""

    path: str
    tasks: list[Task] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)
    rejects_path: str | None = None

    @property
    def num_rejected(self) -> int:
        return len(self.rejected_lines)

    def summary(self) -> str:
        s = f"{self.path}: {len(self.tasks)} valid task(s), {self.num_rejected} rejected"
        if self.rejects_path and self.num_rejected:
            s += f" (written to {self.rejects_path})"
        return s


# ---- validation of one row --------------------------------------------------------------------------------------


def _field_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(row)"


# Messages of Task's whole-model validator, by the field they concern.
_MODEL_CHECK_FIELDS = (("answer", "answer"), ("choice answer", "answer"), ("evidence", "evidence"),
                       ("required_ops", "required_ops"))


def _pydantic_problems(path: str, line: int, exc: ValidationError) -> list[RowProblem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and p in ("function-after", "tagged-union")))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            valid = ", ".join(Task.model_fields)
            msg = f"unknown field; valid fields: {valid}"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        elif "input" in err and err.get("type") not in ("value_error",):
            shown = json.dumps(err["input"], default=str)
            msg = f"{msg} (got {shown[:80]})"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        name = _field_name(loc)
        if name == "(row)":  # a whole-model check: name the field its message is about
            name = next((f for key, f in _MODEL_CHECK_FIELDS if msg.startswith(key)), name)
        problems.append(RowProblem(path, line, name, msg))
    return problems


def _image_size(file: Path, check: ImageCheck) -> tuple[tuple[int, int] | None, str | None]:
    """(width, height) or None, and an error message or None."""
    if check == "none":
        return None, None
    if not file.exists():
        return None, f"image not found: {file} (paths are relative to the JSONL file's folder)"
    if not file.is_file():
        return None, f"image path is not a file: {file}"
    if check == "exists":
        return None, None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            size = im.size
            if check == "decode":
                im.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        return None, f"image cannot be read: {file}: {exc}"
    return size, None


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def validate_row(row: Any, *, path: str, line: int, base: Path, image_check: ImageCheck = "header"
                 ) -> tuple[Task | None, list[RowProblem]]:
    """Validate one decoded JSON row; returns the Task (image paths resolved against `base`) or the problems."""
    if not isinstance(row, dict):
        return None, [RowProblem(path, line, "", f"a row must be a JSON object, got {type(row).__name__}")]
    try:
        task = Task.model_validate(row)
    except ValidationError as exc:
        return None, _pydantic_problems(path, line, exc)
    problems: list[RowProblem] = []
    resolved: list[str] = []
    sizes: list[tuple[int, int] | None] = []
    for i, p in enumerate(task.images):
        file = _resolve(base, p)
        resolved.append(str(file))
        size, err = _image_size(file, image_check)
        sizes.append(size)
        if err:
            problems.append(RowProblem(path, line, f"images[{i}]", err))
    for j, ev in enumerate(task.evidence):
        size = sizes[ev.image] if ev.image < len(sizes) else None
        if size is not None:
            w, h = size
            x1, y1, x2, y2 = ev.box
            if x2 > w or y2 > h:
                problems.append(RowProblem(path, line, f"evidence[{j}].box",
                                           f"box {list(ev.box)} extends past image {ev.image} ({w}x{h}); boxes are "
                                           "(x1, y1, x2, y2) in pixels of the image as given, x2/y2 exclusive"))
    if task.answer_type == "box" and sizes and sizes[0] is not None:
        w, h = sizes[0]
        a = task.answer
        assert isinstance(a, list)
        if min(a) < 0 or a[2] > w or a[3] > h or a[2] <= a[0] or a[3] <= a[1]:
            problems.append(RowProblem(path, line, "answer", f"box answer {a} is not a box inside the image ({w}x{h})"))
    if problems:
        return None, problems
    task.images = resolved
    return task, []


# ---- reading --------------------------------------------------------------------------------------------------


def read_tasks_report(path: str | Path, *, skip_invalid: bool = False, rejects_path: str | Path | None = None,
                      image_check: ImageCheck = "header", progress: bool = False) -> TaskFileReport:
    """Read and validate every row of a task JSONL file.

    With `skip_invalid=False` (default) any problem raises `TaskFileError` listing all of them. With
    `skip_invalid=True` the bad rows are left out of `tasks`, and written as `{"line", "problems", "row"}` JSONL to
    `rejects_path` (default: `<file>.rejected.jsonl` next to it) so they are never dropped silently.
    """
    if image_check not in IMAGE_CHECKS:
        raise ValueError(f"image_check must be one of {', '.join(IMAGE_CHECKS)}, got {image_check!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"task file not found: {path}")
    base = path.parent
    report = TaskFileReport(path=str(path))
    raw_rejects: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        lines = f.readlines()
    it: Iterable[tuple[int, str]] = enumerate(lines, 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(lines), desc=f"validating {path.name}", unit="row")
    for lineno, text in it:
        if not text.strip():
            continue
        problems: list[RowProblem] = []
        task: Task | None = None
        row: Any = None
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            problems = [RowProblem(str(path), lineno, "", f"not valid JSON: {exc.msg} at column {exc.colno}")]
        else:
            task, problems = validate_row(row, path=str(path), line=lineno, base=base, image_check=image_check)
        if task is not None:
            first = seen_ids.get(task.id)
            if first is not None:
                problems = [RowProblem(str(path), lineno, "id", f"duplicate id {task.id!r} (first on line {first}); "
                                                                 "ids must be unique within a file")]
                task = None
            else:
                seen_ids[task.id] = lineno
        if task is not None:
            report.tasks.append(task)
        else:
            report.problems.extend(problems)
            report.rejected_lines.append(lineno)
            raw_rejects.append({"line": lineno, "problems": [str(p) for p in problems],
                                "row": row if row is not None else text.rstrip("\n")})
    if report.problems and not skip_invalid:
        raise TaskFileError(path, report.problems)
    if raw_rejects:
        out = Path(rejects_path) if rejects_path else path.with_name(path.stem + ".rejected.jsonl")
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            for r in raw_rejects:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        report.rejects_path = str(out)
    return report


def read_tasks(path: str | Path, *, skip_invalid: bool = False, rejects_path: str | Path | None = None,
               image_check: ImageCheck = "header", progress: bool = False) -> list[Task]:
    """The valid tasks of a file (see `read_tasks_report`); raises `TaskFileError` on any bad row unless
    `skip_invalid`. With `skip_invalid`, a warning with the count and the rejects file is logged."""
    report = read_tasks_report(path, skip_invalid=skip_invalid, rejects_path=rejects_path, image_check=image_check,
                               progress=progress)
    if report.num_rejected:
        import logging

        logging.getLogger(__name__).warning("%s", report.summary())
    return report.tasks


# ---- writing --------------------------------------------------------------------------------------------------


def task_row(task: Task, base: str | Path) -> dict[str, Any]:
    """The JSON row of `task` for a file in folder `base` (image paths made relative to it)."""
    row = task.model_dump(mode="json")
    base = Path(base).resolve()
    rel = []
    for p in task.images:
        q = Path(p)
        rel.append(os.path.relpath(q.resolve(), base) if q.is_absolute() or q.exists() else p)
    row["images"] = rel
    return row


def write_tasks(path: str | Path, tasks: Iterable[Task], *, append: bool = False) -> int:
    """Write tasks as JSONL with image paths relative to the file's folder; returns how many were written.

    Ids must be unique within what is written (a duplicate is a ValueError naming it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    n = 0
    tmp = path if append else path.with_name(path.name + ".tmp")
    with tmp.open("a" if append else "w", encoding="utf-8") as f:
        for task in tasks:
            if task.id in seen:
                raise ValueError(f"duplicate task id {task.id!r} while writing {path}")
            seen.add(task.id)
            f.write(json.dumps(task_row(task, path.parent), ensure_ascii=False) + "\n")
            n += 1
    if not append:
        tmp.replace(path)
    return n
