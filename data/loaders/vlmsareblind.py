"""VLMsAreBlind / BlindTest (Rahmanzadehgervi et al., 2024): seven low-level visual tasks that are easy for people.

Get it: https://huggingface.co/datasets/XAI/vlmsareblind (folder `data/` with `valid-00000-of-00001.parquet`), on a
machine with internet. Columns:

    task          e.g. "Line Plot Intersections", "Touching Circles", "Circled Letter", "Nested Squares",
                  "Olympic Counting - Circles", "Counting Grid - Word Grids", "Subway Connections"
    image         {"bytes": <PNG>, "path": ...}
    prompt        the question as the paper asked it (answers in curly brackets, e.g. "{3}")
    groundtruth   the answer ("2", "Yes", "{B}", ...)
    metadata      JSON text with the generation parameters

Pass the dataset folder or a parquet file. Answers are read without their braces; a purely numeric answer becomes a
number task, anything else (Yes/No, letters, "3,4" for grids) a text task. Images go to `image_dir` (default
`<file stem>_images/`), named by content hash. `tasks=` keeps only the listed task names.

Scoring (`metadata["scoring"] = "vlmsareblind"`, `rewards.vlmsareblind_scoring`): the per-task rules VLMEvalKit
publishes for this benchmark (bracketed answer equal, "Yes"/"No" contained, counts contained, grid rows and
columns), applied to `metadata["answer_text"]` (the groundtruth without brackets).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, \
    write_image_bytes
from rollout.task import Task

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def parse_groundtruth(value: Any) -> tuple[str | float, str]:
    """(answer, answer_type) from a groundtruth cell: braces stripped; numbers become numbers."""
    text = answer_text(value)
    if _NUMBER.match(text):
        return float(text), "number"
    return text, "text"


def answer_text(value: Any) -> str:
    """The groundtruth as text without its curly brackets ("{3}" -> "3"), what the published rule compares."""
    text = str(value).strip()
    return text[1:-1].strip() if text.startswith("{") and text.endswith("}") else text


def _slug(task: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", task.lower()).strip("_")


class VLMsAreBlindLoader(Loader):
    name: ClassVar[str] = "vlmsareblind"
    description: ClassVar[str] = "VLMsAreBlind: line intersections, touching circles, nested squares, counting, ..."
    homepage: ClassVar[str] = "https://huggingface.co/datasets/XAI/vlmsareblind"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             tasks: list[str] | str | None = None, **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"vlmsareblind: unknown option(s) {', '.join(options)}; valid: tasks")
        if path.is_file():
            files = [path]
        else:
            files = sorted(path.glob("data/*.parquet")) + sorted(path.glob("*.parquet"))
        if not files:
            raise LoaderError(f"vlmsareblind: no parquet files in {path} or {path}/data; expected the XAI/vlmsareblind "
                              "dataset folder")
        keep = None if tasks is None else {t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks)}
        out_dir = image_dir or self.default_image_dir(files[0])
        out, n = [], 0
        rows = iter_parquet_rows(files, ["task", "image", "prompt", "groundtruth"])
        for i, row in enumerate(progress_bar(rows, progress, "vlmsareblind")):
            if keep is not None and row["task"] not in keep:
                continue
            if limit is not None and n >= limit:
                break
            answer, atype = parse_groundtruth(row["groundtruth"])
            meta_raw = row.get("metadata")
            try:
                meta = json.loads(meta_raw) if isinstance(meta_raw, str) and meta_raw else (meta_raw or {})
            except json.JSONDecodeError:
                meta = {"raw": meta_raw}
            image = write_image_bytes(image_cell_bytes(row["image"]), out_dir)
            out.append(Task(id=f"vlmsareblind-{_slug(row['task'])}-{i}", images=[image], question=str(row["prompt"]),
                            answer=answer, answer_type=atype, source="vlmsareblind", split="test",
                            metadata={"task": row["task"], "task_type": "vlmsareblind", "generation": meta,
                                      "groundtruth": str(row["groundtruth"]), "scoring": "vlmsareblind",
                                      "answer_text": answer_text(row["groundtruth"])}))
            n += 1
        if keep is not None and not out:
            raise LoaderError(f"vlmsareblind: no rows with task in {sorted(keep)}")
        return out
