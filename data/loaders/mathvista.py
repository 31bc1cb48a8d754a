"""MathVista (Lu et al., 2024): math reasoning in visual contexts; `testmini` (1000 items) is the usual split.

Get it from https://github.com/lupantech/MathVista (`data/testmini.json`, `data/test.json`) with the images archive
(`images/`), or from https://huggingface.co/datasets/AI4Math/MathVista (parquet files). Both layouts load:

    mathvista/                                    # the GitHub layout
      testmini.json   {"1": {"pid": "1", "question": ..., "image": "images/1.jpg", "choices": null | [...],
                             "unit": ..., "precision": ..., "answer": "1.2", "question_type": "free_form" |
                             "multi_choice", "answer_type": "integer" | "float" | "text" | "list",
                             "metadata": {...}}, ...}
      images/1.jpg ...
    mathvista/data/testmini-00000-of-00001-*.parquet   # the Hugging Face layout: the same fields plus
                                                       # `decoded_image` ({bytes, path}) and `query`

Pass the folder (the `split=` option picks testmini or test) or a file. (`annot_testmini.json`, in both places, holds
extra annotations such as `answer_latex`, not the problems: it is not read.) Also read: VLMEvalKit's
`MathVista_MINI.tsv` (`data.loaders.vlmevalkit`).

The question a task asks is MathVista's official `query` (the published field; built the same way when a copy lacks
it): a hint that states the answer format and the required precision ("...a floating-point number with one decimal
place..."), the question with its unit, and the choices. Multiple choice becomes a choice task whose answer is the
letter of the correct option; integer and float answers become numbers; text and list answers stay text.

Scoring as published (`metadata["scoring"] = "mathvista"`, `rewards.benchmark_scoring`, from MathVista's
`calculate_score.py`): the prediction is normalised to the answer type (a choice letter becomes its option's text,
so duplicate options are handled; integers truncated; floats rounded to `precision`) and compared with the answer
string (`metadata["answer_text"]`). The `test` split has no public answers: those items are skipped and counted in
the log, never silently.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, take, \
    write_image_bytes
from data.question_text import letter
from rollout.task import Task

logger = logging.getLogger(__name__)


def official_query(row: dict[str, Any]) -> str:
    """MathVista's zero-shot query for a problem: the published `query` field, else built as its `build_query.py`
    does (hint with the answer format and precision, question with unit, choices; stripped). Built for the 1000
    testmini problems of `data/testmini.json`, it equals the published `data/query.json` for every one."""
    if row.get("query"):
        return str(row["query"])
    qtype, atype, precision = row.get("question_type"), row.get("answer_type"), _precision(row.get("precision"))
    if qtype == "multi_choice":
        hint = "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
    elif atype == "integer":
        hint = "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end."
    elif atype == "float" and precision == 2:
        hint = ("Please answer the question requiring a floating-point number with two decimal places and provide the "
                "final value, e.g., 1.23, 1.34, 1.45, at the end.")
    elif atype == "float":
        hint = ("Please answer the question requiring a floating-point number with one decimal place and provide the "
                "final value, e.g., 1.2, 1.3, 1.4, at the end.")
    elif atype == "list":
        hint = ("Please answer the question requiring a Python list as an answer and provide the final list, e.g., "
                "[1, 2, 3], [1.2, 1.3, 1.4], at the end.")
    else:
        hint = "Please answer the question and provide the final answer at the end."
    question = f"Question: {row['question']}" + (f" (Unit: {row['unit']})" if row.get("unit") else "")
    parts = [f"Hint: {hint}", question]
    if row.get("choices") is not None and len(row["choices"]):
        parts.append("Choices:\n" + "\n".join(f"({chr(ord('A') + i)}) {c}" for i, c in enumerate(row["choices"])))
    return "\n".join(parts).strip()  # build_query.py strips the query


def _precision(value: Any) -> int | None:
    try:
        return None if value in (None, "") or value != value else int(float(value))
    except (TypeError, ValueError):
        return None


def mathvista_metadata(row: dict[str, Any], answer_text: str, pid: str) -> dict[str, Any]:
    """Task metadata of a MathVista item: what the published scoring needs, plus the item's own metadata."""
    extra = row.get("metadata")
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            extra = {}
    return {"scoring": "mathvista", "answer_text": answer_text, "unit": row.get("unit") or None,
            "precision": _precision(row.get("precision")), "question_type": row.get("question_type"),
            "mathvista_answer_type": row.get("answer_type"), "task_type": "mathvista", "pid": pid,
            **(extra if isinstance(extra, dict) else {})}


class MathVistaLoader(Loader):
    name: ClassVar[str] = "mathvista"
    description: ClassVar[str] = "MathVista: math reasoning over figures, plots, diagrams, scenes"
    homepage: ClassVar[str] = "https://github.com/lupantech/MathVista"

    def _source(self, path: Path, split: str) -> tuple[str, list[Path]]:
        if path.is_file():
            return ("parquet" if path.suffix == ".parquet" else "json"), [path]
        for cand in (path / f"{split}.json", path / "data" / f"{split}.json"):
            if cand.exists():
                return "json", [cand]
        files = sorted(path.glob(f"data/{split}-*.parquet")) + sorted(path.glob(f"{split}-*.parquet"))
        if files:
            return "parquet", files
        raise LoaderError(f"mathvista: found neither {split}.json nor {split}-*.parquet under {path}; expected the "
                          "MathVista GitHub data folder or the AI4Math/MathVista dataset folder")

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             split: str = "testmini", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mathvista: unknown option(s) {', '.join(options)}; valid: split")
        if not path.exists():
            raise LoaderError(f"mathvista: {path} not found")
        kind, files = self._source(path, split)
        if kind == "json":
            data = json.loads(files[0].read_text())
            rows = list(data.values()) if isinstance(data, dict) else list(data)
            base = files[0].parent
        else:
            rows = iter_parquet_rows(files)  # type: ignore[assignment]
            base = files[0].parent
        out_dir = image_dir or self.default_image_dir(files[0])
        tasks, unanswered = [], 0
        for row in progress_bar(take(rows, limit), progress, "mathvista"):
            pid = str(row.get("pid"))
            if row.get("answer") in (None, ""):
                unanswered += 1
                continue
            if kind == "parquet" and row.get("decoded_image"):
                image = write_image_bytes(image_cell_bytes(row["decoded_image"]), out_dir)
            else:
                img_path = base / row["image"]
                if not img_path.exists() and (base.parent / row["image"]).exists():
                    img_path = base.parent / row["image"]
                if not img_path.exists():
                    raise LoaderError(f"mathvista: item {pid}: image {row['image']} not found under {base} or "
                                      f"{base.parent}; unpack the images archive next to {files[0].name}")
                image = str(img_path.resolve())
            meta = mathvista_metadata(row, str(row["answer"]), pid)
            question = official_query(row)
            if row["question_type"] == "multi_choice":
                choices = [str(c) for c in row["choices"]]
                if str(row["answer"]) not in choices:
                    raise LoaderError(f"mathvista: item {pid}: answer {row['answer']!r} is not among its choices")
                task = Task(id=f"mathvista-{pid}", images=[image], question=question,
                            answer=letter(choices.index(str(row["answer"]))), answer_type="choice", choices=choices,
                            source="mathvista", split=split, metadata=meta)
            elif row["answer_type"] in ("integer", "float"):
                task = Task(id=f"mathvista-{pid}", images=[image], question=question, answer=float(row["answer"]),
                            answer_type="number", source="mathvista", split=split, metadata=meta)
            else:
                task = Task(id=f"mathvista-{pid}", images=[image], question=question, answer=str(row["answer"]),
                            answer_type="text", source="mathvista", split=split, metadata=meta)
            tasks.append(task)
        if unanswered:
            logger.warning("mathvista %s: %d item(s) have no public answer and were not loaded", split, unanswered)
        return tasks
