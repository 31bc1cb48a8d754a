"""VisualPuzzles (Song et al., 2025): 1168 four-option puzzles that test reasoning rather than domain knowledge
(algorithmic, analogical, deductive, inductive, spatial).

Get it: `huggingface-cli download neulab/VisualPuzzles --repo-type dataset --local-dir VisualPuzzles` on a machine
with internet (https://huggingface.co/datasets/neulab/VisualPuzzles), then copy the folder here. It holds one file,
`data.parquet` (earlier revisions: `data/train-*.parquet`, with a `difficulty` column), with columns

    id         int64
    category   "algorithmic" | "analogical" | "deductive" | "inductive" | "spatial"
    image      {"bytes": <encoded image>, "path": ...}
    question   the question text
    options    four option texts, or null when the options are drawn in the image
    answer     the option letter, "A".."D"

VLMEvalKit's `VisualPuzzles.tsv` (columns index, image (base64), question, options (the list written as a string,
empty when the options are in the image), answer, category) also loads. Pass the folder or a file. The question is VisualPuzzles' own prompt (its lmms-eval task): "Question: ...",
then "Options:" with `(A) ...` lines, or "Options: Choose from (A) (B) (C) (D) in the image.", then the direct-answer
instruction (`prompt="cot"`: the chain-of-thought one). Images go to `image_dir` (default `<file stem>_images/`),
named by content hash. `metadata["category"]` is the reasoning category.

Scoring (`metadata["scoring"] = "visualpuzzles"`, `rewards.visualpuzzles_scoring`): the benchmark's rule-based
letter parser and exact match; no LLM judge is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import ast
import re

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, take, \
    write_image_bytes
from data.loaders.vlmevalkit import read_tsv
from rollout.task import Task

COLUMNS = ("id", "image", "question", "options", "answer")
TSV_COLUMNS = ("index", "question", "options", "answer")
PROMPTS = {
    "direct": "Answer the question with the option's letter from the given choices directly.",
    "cot": ("Solve the multiple-choice question and then answer with the option letter from the given choices. The "
            "last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where "
            "LETTER is one of options. Think step by step before answering."),
}
LETTERS = ("A", "B", "C", "D")


def visualpuzzles_question(question: str, options: list[str] | None, prompt: str) -> str:
    """VisualPuzzles' prompt for one item (`VisualPuzzles_doc_to_text`)."""
    text = "Question: " + question.strip()
    if options is not None:
        text += "\nOptions:\n" + "\n".join(f"({letter}) {o}" for letter, o in zip(LETTERS, options, strict=False))
    else:
        text += "\nOptions: Choose from (A) (B) (C) (D) in the image."
    return text + "\n" + PROMPTS[prompt]


def _options_cell(cell: str) -> list[str]:
    """A TSV options cell: a Python list written as a string; VLMEvalKit's own reading (the quoted items) when it
    does not parse."""
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        return re.findall(r"'(.*?)'", cell)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else re.findall(r"'(.*?)'", cell)


def _tsv_rows(f: Path) -> list[dict[str, Any]]:
    """VLMEvalKit's TSV rows in the parquet's shape: `index` -> id, options a list (none when the cell is empty)."""
    out = []
    for row in read_tsv(f, TSV_COLUMNS):
        cell = str(row.get("options") or "").strip()
        options = None if cell in ("", "nan", "None") else _options_cell(cell)
        out.append({**row, "id": row["index"], "options": options})
    return out


class VisualPuzzlesLoader(Loader):
    name: ClassVar[str] = "visualpuzzles"
    description: ClassVar[str] = "VisualPuzzles: knowledge-light reasoning puzzles, four options (1168 items)"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/neulab/VisualPuzzles"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             prompt: str = "direct", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"visualpuzzles: unknown option(s) {', '.join(options)}; valid: prompt")
        if prompt not in PROMPTS:
            raise LoaderError(f"visualpuzzles: prompt must be direct or cot, got {prompt!r}")
        if path.is_file():
            files = [path]
        else:
            files = sorted(path.glob("*.parquet")) + sorted(path.glob("data/*.parquet")) or sorted(path.glob("*.tsv"))
        if not files:
            raise LoaderError(f"visualpuzzles: no parquet file at {path} (expected data.parquet from "
                              "neulab/VisualPuzzles)")
        out_dir = image_dir or self.default_image_dir(files[0])
        tasks = []
        rows: Any = (_tsv_rows(files[0]) if files[0].suffix == ".tsv" else iter_parquet_rows(files, list(COLUMNS)))
        for n, row in enumerate(progress_bar(take(rows, limit), progress, "visualpuzzles")):
            where = f"{files[0] if len(files) == 1 else path}: row {n} (id {row.get('id')})"
            answer = str(row["answer"] or "").strip().upper()
            if answer not in LETTERS:
                raise LoaderError(f"{where}: field answer {row['answer']!r} is not one of A, B, C, D")
            opts = row["options"]
            if opts is not None and (not isinstance(opts, list) or len(opts) != 4):
                raise LoaderError(f"{where}: field options must be four texts or null, got {opts!r}")
            choices = [str(o) for o in opts] if opts is not None else None
            if row["image"] is None:
                raise LoaderError(f"{where}: field image is empty; every VisualPuzzles item has an image")
            try:
                image = write_image_bytes(image_cell_bytes(row["image"]), out_dir)
            except LoaderError as exc:
                raise LoaderError(f"{where}: field image: {exc}") from None
            tasks.append(Task(
                id=f"visualpuzzles-{row['id']}", images=[image],
                question=visualpuzzles_question(str(row["question"]), choices, prompt), answer=answer,
                answer_type="choice", choices=choices, source="visualpuzzles", split="test",
                metadata={"scoring": "visualpuzzles", "options": choices, "category": row.get("category"),
                          "difficulty": row.get("difficulty"), "task_type": "visualpuzzles"}))
        return tasks
