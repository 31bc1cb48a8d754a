"""MATH-Vision (Wang et al., 2024): 3040 competition math problems with images (`test`), and `testmini` (304).

Get it: https://github.com/mathllm/MATH-V (`data/test.jsonl`, `data/testmini.jsonl`, plus the images archive
`images.zip` unpacked as `images/`), or https://huggingface.co/datasets/MathLLMs/MathVision (parquet files with the
images inside). Both layouts load:

    MATH-V/data/testmini.jsonl   {"id": "4", "question": "How many different digits ...?\\n<image1>",
                                  "options": [] | ["A", "B", "C", "D", "E"] | ["red", "blue", ...],
                                  "answer": "6" | "D", "solution": null, "level": 1, "subject": "counting",
                                  "image": "images/4.jpg"}
    MATH-V/images/4.jpg ...      (`image` is relative to the repository root: data/.. or data/)
    MathVision/data/testmini-00000-of-00001-*.parquet   the same fields plus `decoded_image` ({bytes, path})

Pass the folder (`split=testmini|test`, default testmini, the "MathVision-mini" of CodeV's table) or a file. The
question is MATH-Vision's: the text (with its `<image1>` mark) followed by the options as `(A) ...` lines, except
when the options are just the letters A-E (the choices are drawn in the image). Multiple-choice answers are letters
(choice tasks); other answers are text tasks (`metadata["answer_text"]`). `metadata["category"]` is the subject.

Scoring (`metadata["scoring"] = "mathvision"`, `rewards.mathvision_scoring`): MATH-Vision's rule-based
`evaluate.py` (answer extraction, `find_math_answer`, `is_equal` with numbers compared to 2 decimal places); the
official evaluation uses no LLM judge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, take, \
    write_image_bytes
from data.question_text import LETTERS
from rollout.task import Task

FIELDS = ("id", "question", "options", "answer", "image")
SPLITS = ("testmini", "test")


def _source(path: Path, split: str) -> list[Path]:
    if path.is_file():
        return [path]
    for cand in (path / "data" / f"{split}.jsonl", path / f"{split}.jsonl"):
        if cand.exists():
            return [cand]
    files = sorted(path.glob(f"data/{split}-*.parquet")) + sorted(path.glob(f"{split}-*.parquet"))
    if files:
        return files
    raise LoaderError(f"mathvision: found neither data/{split}.jsonl nor data/{split}-*.parquet under {path}; expected "
                      "the MATH-V repository folder or the MathLLMs/MathVision dataset folder (split=testmini|test)")


def _jsonl_rows(f: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LoaderError(f"{f}:{n}: not valid JSON: {exc.msg}") from None
    return rows


def mathvision_question(question: str, options: list[str]) -> str:
    """MATH-Vision's prompt body: the question, then `(A) ...` lines unless the options are only the letters."""
    if options and "".join(options) != LETTERS[: len(options)]:
        return question + "\n" + "".join(f"({LETTERS[i]}) {o}\n" for i, o in enumerate(options))
    return question


class MathVisionLoader(Loader):
    name: ClassVar[str] = "mathvision"
    description: ClassVar[str] = "MATH-Vision: competition math with images (test 3040, testmini 304)"
    homepage: ClassVar[str] = "https://github.com/mathllm/MATH-V"

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             split: str = "testmini", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mathvision: unknown option(s) {', '.join(options)}; valid: split")
        if split not in SPLITS:
            raise LoaderError(f"mathvision: split must be testmini or test, got {split!r}")
        if not path.exists():
            raise LoaderError(f"mathvision: {path} not found; expected the MATH-V folder or MathLLMs/MathVision")
        files = _source(path, split)
        if files[0].suffix == ".parquet":
            rows: Any = iter_parquet_rows(files, list(FIELDS))
        else:
            rows = _jsonl_rows(files[0])
        out_dir = image_dir or self.default_image_dir(files[0])
        tag = split if not path.is_file() else ("testmini" if "testmini" in path.name else "test")
        tasks = []
        for n, row in enumerate(progress_bar(take(rows, limit), progress, "mathvision")):
            where = f"{files[0] if len(files) == 1 else files[0].parent}: item {n} (id {row.get('id')})"
            missing = [k for k in FIELDS if k not in row]
            if missing:
                raise LoaderError(f"{where}: missing field(s) {', '.join(missing)}")
            tasks.append(self._task(row, self._image(row, files[0], out_dir, where), tag, where))
        return tasks

    @staticmethod
    def _image(row: dict[str, Any], f: Path, out_dir: Path, where: str) -> str:
        cell = row.get("decoded_image")
        if isinstance(cell, dict) and (cell.get("bytes") or cell.get("path")):
            try:
                return write_image_bytes(image_cell_bytes(cell), out_dir)
            except LoaderError as exc:
                raise LoaderError(f"{where}: field decoded_image: {exc}") from None
        rel = str(row.get("image") or "")
        if rel:
            for base in (f.parent.parent, f.parent):
                if (base / rel).exists():
                    return str((base / rel).resolve())
        raise LoaderError(f"{where}: field image {rel!r} not found under {f.parent.parent} or {f.parent} (and no "
                          "decoded_image); unpack MATH-V's images.zip as images/ in the repository folder")

    @staticmethod
    def _task(row: dict[str, Any], image: str, split: str, where: str) -> Task:
        raw = row.get("options")
        if raw is not None and not isinstance(raw, (list, tuple)):
            raise LoaderError(f"{where}: field options must be a list of option texts ([] when open), got "
                              f"{type(raw).__name__}")
        options = [str(o) for o in (raw or [])]
        answer = str(row["answer"]).strip()
        meta = {"scoring": "mathvision", "answer_text": answer, "options": options, "subject": row.get("subject"),
                "category": row.get("subject"), "level": row.get("level"), "mathvision_id": str(row["id"]),
                "task_type": "mathvision"}
        common = {"id": f"mathvision-{row['id']}", "images": [image],
                  "question": mathvision_question(str(row["question"]), options), "source": "mathvision",
                  "split": split, "metadata": meta}
        if options:
            if len(answer) != 1 or answer not in LETTERS[: len(options)]:
                raise LoaderError(f"{where}: field answer {answer!r} is not a letter among the {len(options)} options")
            return Task(answer=answer, answer_type="choice", choices=options, **common)
        return Task(answer=answer, answer_type="text", **common)
