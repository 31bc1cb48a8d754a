"""Tasks to and from a Hugging Face `datasets.Dataset` (the only place `data` imports `datasets`, lazily).

    ds = tasks_to_dataset(tasks)                       # image paths as strings
    ds = tasks_to_dataset(tasks, embed_images=True)    # images embedded (datasets.Image), e.g. to push to a hub
    tasks = dataset_to_tasks(ds, image_dir="imgs/")    # embedded images are written to image_dir as PNG files

Columns: `id`, `images` (paths, or a sequence of `datasets.Image`), `question`, `answer` (JSON text, because it is a
string, a number or a box), `answer_type`, `choices`, `evidence` (list of {box, image, label}), `required_ops`,
`source`, `split`, `metadata` (JSON text, free form). Rows are validated as `Task`s on the way back; a bad row is an
error naming its index and field.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rollout.task import Task


def tasks_to_dataset(tasks: Sequence[Task], *, embed_images: bool = False) -> Any:
    """A `datasets.Dataset` with one row per task (see the module docstring for the columns)."""
    import datasets

    rows: dict[str, list[Any]] = {k: [] for k in ("id", "images", "question", "answer", "answer_type", "choices",
                                                  "evidence", "required_ops", "source", "split", "metadata")}
    for t in tasks:
        rows["id"].append(t.id)
        rows["images"].append(list(t.images))
        rows["question"].append(t.question)
        rows["answer"].append(json.dumps(t.answer))
        rows["answer_type"].append(t.answer_type)
        rows["choices"].append(list(t.choices) if t.choices is not None else None)
        rows["evidence"].append([{"box": [float(v) for v in e.box], "image": e.image, "label": e.label}
                                 for e in t.evidence])
        rows["required_ops"].append(list(t.required_ops))
        rows["source"].append(t.source)
        rows["split"].append(t.split)
        rows["metadata"].append(json.dumps(t.metadata, ensure_ascii=False))
    features = datasets.Features({
        "id": datasets.Value("string"),
        "images": datasets.Sequence(datasets.Image() if embed_images else datasets.Value("string")),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "answer_type": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "evidence": [{"box": datasets.Sequence(datasets.Value("float64"), length=4), "image": datasets.Value("int64"),
                      "label": datasets.Value("string")}],
        "required_ops": datasets.Sequence(datasets.Value("string")),
        "source": datasets.Value("string"),
        "split": datasets.Value("string"),
        "metadata": datasets.Value("string"),
    })
    return datasets.Dataset.from_dict(rows, features=features)


def _image_to_path(value: Any, image_dir: Path | None, row: int) -> str:
    """A dataset image cell (a path string, a PIL image, or {"bytes", "path"}) as a file path."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("bytes") is None and value.get("path"):
        return str(value["path"])
    if image_dir is None:
        raise ValueError(f"dataset row {row}: images are embedded; pass image_dir to write them to files")
    if isinstance(value, dict):
        data = value["bytes"]
    else:  # a PIL image (datasets decodes Image features by default)
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        data = buf.getvalue()
    digest = hashlib.sha1(data).hexdigest()[:20]
    image_dir.mkdir(parents=True, exist_ok=True)
    path = image_dir / f"{digest}.png"
    if not path.exists():
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.save(path, format="PNG")
    return str(path.resolve())


def dataset_to_tasks(ds: Any, *, image_dir: str | Path | None = None) -> list[Task]:
    """Tasks from a dataset with the columns of `tasks_to_dataset` (embedded images go to `image_dir`)."""
    out: list[Task] = []
    idir = Path(image_dir) if image_dir is not None else None
    for i, row in enumerate(ds):
        try:
            answer = json.loads(row["answer"]) if isinstance(row["answer"], str) else row["answer"]
            meta = json.loads(row["metadata"]) if isinstance(row.get("metadata"), str) else (row.get("metadata") or {})
            images = [_image_to_path(v, idir, i) for v in row["images"]]
            out.append(Task(id=row["id"], images=images, question=row["question"], answer=answer,
                            answer_type=row["answer_type"], choices=row.get("choices"),
                            evidence=[e for e in (row.get("evidence") or [])], required_ops=row.get("required_ops") or [],
                            source=row.get("source") or "unknown", split=row.get("split") or "train", metadata=meta))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(row)"
            raise ValueError(f"dataset row {i}: {where}: {first.get('msg')}") from exc
        except (KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"dataset row {i}: {type(exc).__name__}: {exc} (expected the columns of "
                             "tasks_to_dataset)") from exc
    return out


def load_local_dataset(path: str | Path, *, split: str | None = None) -> Any:
    """A `datasets.Dataset` from a local folder: one written by `save_to_disk`, or data files (parquet, JSON lines,
    CSV, arrow) that `datasets.load_dataset` understands. Never downloads (the folder must exist)."""
    import datasets

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"dataset folder not found: {p}")
    if (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists() or (p / "state.json").exists():
        ds = datasets.load_from_disk(str(p))
    else:
        ds = datasets.load_dataset(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            if len(ds) != 1:
                raise ValueError(f"{p} has splits {', '.join(ds)}; pass split=")
            split = next(iter(ds))
        if split not in ds:
            raise ValueError(f"{p} has no split {split!r}; splits: {', '.join(ds)}")
        ds = ds[split]
    return ds


def columns_to_tasks(ds: Any, *, image_dir: str | Path, id_prefix: str, question: str, answer: str, image: str,
                     answer_type: str = "text", choices: str | None = None, source: str = "hf") -> list[Task]:
    """Tasks from any dataset by naming its columns (for datasets not written by `tasks_to_dataset`)."""
    idir = Path(image_dir)
    missing = [c for c in (question, answer, image, choices) if c and c not in ds.column_names]
    if missing:
        raise ValueError(f"dataset has no column(s) {', '.join(missing)}; columns: {', '.join(ds.column_names)}")
    out = []
    for i, row in enumerate(ds):
        try:
            cell = row[image]
            paths = [_image_to_path(c, idir, i) for c in (cell if isinstance(cell, list) else [cell])]
            out.append(Task(id=f"{id_prefix}-{i}", images=paths, question=str(row[question]), answer=row[answer],
                            answer_type=answer_type, choices=row[choices] if choices else None,
                            source=source, split="test"))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"dataset row {i}: {'.'.join(map(str, first.get('loc', ()))) or '(row)'}: "
                             f"{first.get('msg')}") from exc
    return out
