"""Predictions in VLMEvalKit's result format, so that a run can be scored by the harness users already trust.

VLMEvalKit's inference (`vlmeval/inference.py`, `infer_data_job`) writes the benchmark's own table with one column
added, `prediction` (the model's response; `Failed to obtain answer: ...` when it got none), the `image` column
dropped, to `{work_dir}/{model_name}_{dataset_name}.{xlsx|tsv}` (`get_pred_file_path`; `PRED_FORMAT=tsv` selects
the TSV, written with every field quoted). Its `evaluate()` then reads that file. We write the TSV variant:

- when a task was read from a VLMEvalKit TSV and its loader kept the original row (`metadata["vlmevalkit_row"]`,
  a dict of column -> value, `image` excluded), those columns, in their order;
- otherwise the columns its evaluators read: `index`, `question`, `answer`, the option columns `A`, `B`, ... for
  choice questions, `category` when known, then `prediction`.

`index` is the row's own when kept (`metadata["index"]` or the original row's), else the task's position.
The prediction is the episode's extracted final answer; an episode that gave none contributes its last assistant
message, as VLMEvalKit's answer extraction expects free text. With several samples per task, sample 0's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rollout.task import Task
from rollout.trajectory import FinishReason

FAIL_MSG = "Failed to obtain answer"
ROW_KEY = "vlmevalkit_row"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "x"


def predictions_path(out_dir: str | Path, model_name: str, dataset_name: str) -> Path:
    """`{out_dir}/{model}_{dataset}.tsv`, VLMEvalKit's name for a result file."""
    return Path(out_dir) / f"{_safe(model_name)}_{_safe(dataset_name)}.tsv"


def original_row(task: Task, position: int) -> dict[str, Any]:
    """The benchmark row of `task` without its image (see the module docstring)."""
    kept = task.metadata.get(ROW_KEY)
    if isinstance(kept, dict):
        row = {k: v for k, v in kept.items() if k != "image"}
        row.setdefault("index", task.metadata.get("index", position))
        return row
    row: dict[str, Any] = {"index": task.metadata.get("index", position), "question": task.question,  # type: ignore[no-redef]
                           "answer": answer_text(task.answer)}
    for i, text in enumerate(task.choices or []):
        row[chr(ord("A") + i)] = text
    cat = task.metadata.get("category")
    if cat is not None:
        row["category"] = cat
    return row


def answer_text(answer: str | float | list[float]) -> str:
    """A ground-truth answer as text: 3.0 -> "3" (as benchmarks write it), boxes as "[x1, y1, x2, y2]"."""
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    if isinstance(answer, list):
        return "[" + ", ".join(answer_text(float(v)) for v in answer) + "]"
    return str(answer)


def prediction_text(record: dict[str, Any], last_message: str | None) -> str:
    """What goes in the `prediction` cell for one sample record."""
    if record.get("failed"):
        return f"{FAIL_MSG}: {record.get('finish_reason')}: {record.get('error') or ''}".strip()
    if record.get("prediction") is not None:
        return str(record["prediction"])
    if record.get("finish_reason") == FinishReason.ANSWERED.value:
        return ""
    return last_message or ""


def write_predictions(path: str | Path, rows: Sequence[tuple[dict[str, Any], str]]) -> Path:
    """Write (row, prediction) pairs as a VLMEvalKit TSV (all fields quoted, header = union of columns in order,
    `prediction` last); returns the path."""
    path = Path(path)
    columns: list[str] = []
    for row, _ in rows:
        columns += [c for c in row if c not in columns and c != "prediction"]
    columns.append("prediction")
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(columns)
        for row, pred in rows:
            w.writerow([pred if c == "prediction" else ("" if row.get(c) is None else row.get(c)) for c in columns])
    tmp.replace(path)
    return path
