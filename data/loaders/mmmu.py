"""MMMU (Yue et al., 2024): college-level multi-discipline questions over 30 subjects, 1-7 images per question.

Get it: `huggingface-cli download MMMU/MMMU --repo-type dataset --local-dir MMMU` on a machine with internet
(https://huggingface.co/datasets/MMMU/MMMU), then copy the folder here. Expected layout, one folder per subject:

    MMMU/
      Accounting/dev-00000-of-00001.parquet         (5 items per subject: few-shot examples)
      Accounting/validation-00000-of-00001.parquet  (30 per subject, 900 in all: the usual evaluation split)
      Accounting/test-00000-of-00001.parquet        (answers withheld: items without an answer are skipped)
      Agriculture/...

A flat copy (`data/validation-*.parquet`, e.g. lmms-lab/MMMU) or a single parquet file also loads. Columns:

    id                "validation_Accounting_1" (split, subject, number)
    question          text with `<image N>` placeholders for image_N
    options           the options as a Python list written as a string: "['$6', '$7', '$8', '$9']" ("[]" when open)
    explanation, img_type, topic_difficulty, subfield
    image_1..image_7  {"bytes": <encoded image>, "path": ...} or null
    answer            the option letter ("B") for multiple choice; the answer text for open questions, sometimes a
                      Python list of acceptable answers written as a string ("['24/7', '3.429']")
    question_type     "multiple-choice" or "open"

Options: `split=` (validation, dev or test; default validation) picks the files of a folder; `subjects=` (names or a
comma-separated string) keeps those subjects. Every non-null image_N becomes a task image, in N order, written once to
`image_dir` (default `mmmu_images/` next to the data) named by content hash; `metadata["image_numbers"]` gives each
task image's N, so a question's `<image N>` is the task image at `image_numbers.index(N)`. Multiple-choice questions
get the options as `(A) ...` lines (MMMU's own prompt shape) and the answer letter; open questions are text tasks.

Scoring (`metadata["scoring"] = "mmmu"`, `rewards.mmmu_scoring`): MMMU's rule-based parser and matcher
(`mmmu/utils/eval_utils.py`); MMMU's evaluation uses no LLM judge.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, \
    write_image_bytes
from data.question_text import LETTERS, with_choices
from rollout.task import Task

logger = logging.getLogger(__name__)

SPLITS = ("dev", "validation", "test")
IMAGE_COLUMNS = tuple(f"image_{n}" for n in range(1, 8))
REQUIRED = ("id", "question", "options", "answer", "question_type", "image_1")


def _files(path: Path, split: str) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted({*path.glob(f"*/{split}-*.parquet"), *path.glob(f"{split}-*.parquet")})
    if not files:
        raise LoaderError(f"mmmu: no {split}-*.parquet under {path} (expected <Subject>/{split}-00000-of-00001.parquet "
                          "from MMMU/MMMU, or data/{split}-*.parquet); pass split=dev|validation|test")
    return files


def parse_options(cell: Any, where: str) -> list[str]:
    """MMMU's `options` cell: a Python list written as a string (a real list is accepted too)."""
    if isinstance(cell, (list, tuple)):
        return [str(o) for o in cell]
    try:
        value = ast.literal_eval(str(cell))
    except (ValueError, SyntaxError) as exc:
        raise LoaderError(f"{where}: field options {str(cell)[:80]!r} is not a Python list written as a string "
                          f"(MMMU writes \"['a', 'b']\"): {exc}") from None
    if not isinstance(value, (list, tuple)):
        raise LoaderError(f"{where}: field options must be a list, got {type(value).__name__}")
    return [str(o) for o in value]


def parse_answer(cell: Any) -> str | list[str]:
    """MMMU's `answer`: a letter or text, or a list of acceptable answers written as a Python list."""
    text = str(cell).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, (list, tuple)) and value:
            return [str(v) for v in value]
    return text


def _selected(files: list[Path], subjects: Sequence[str] | None) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    for f in files:
        for n, row in enumerate(iter_parquet_rows([f], list(REQUIRED))):
            if subjects is not None and subject_of(str(row["id"])) not in subjects:
                continue
            yield f, n, row


def subject_of(item_id: str) -> str:
    """"validation_Art_Theory_12" -> "Art_Theory" (as MMMU's `main_eval_only.py` groups ids)."""
    return "_".join(item_id.split("_")[1:-1])


class MMMULoader(Loader):
    name: ClassVar[str] = "mmmu"
    description: ClassVar[str] = "MMMU: college-level questions over 30 subjects with up to 7 images (parquet per subject)"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/MMMU/MMMU"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             split: str = "validation", subjects: str | Sequence[str] | None = None, **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mmmu: unknown option(s) {', '.join(options)}; valid: split, subjects")
        if split not in SPLITS:
            raise LoaderError(f"mmmu: split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not path.exists():
            raise LoaderError(f"mmmu: {path} not found; expected the MMMU/MMMU dataset folder or one of its parquet "
                              "files")
        keep = None if subjects is None else [s.strip() for s in
                                               (subjects.split(",") if isinstance(subjects, str) else subjects)]
        files = _files(path, split)
        out_dir = image_dir or self.default_image_dir(path)
        tasks: list[Task] = []
        unanswered = 0
        for f, n, row in progress_bar(_selected(files, keep), progress, "mmmu"):
            if limit is not None and len(tasks) >= limit:
                break
            task = self._task(f, n, row, out_dir, split)
            if task is None:
                unanswered += 1
            else:
                tasks.append(task)
        if unanswered:
            logger.warning("mmmu %s: %d item(s) have no public answer and were not loaded", split, unanswered)
        if keep is not None and not tasks and not unanswered:
            raise LoaderError(f"mmmu: no {split} items for subjects {keep} in {path}")
        return tasks

    @staticmethod
    def _task(f: Path, n: int, row: dict[str, Any], out_dir: Path, split: str) -> Task | None:
        item_id = str(row["id"])
        where = f"{f}: row {n} (id {item_id})"
        answer = parse_answer(row["answer"])
        if answer in ("", "?"):
            return None
        images, numbers = [], []
        for k, col in enumerate(IMAGE_COLUMNS, 1):
            cell = row.get(col)
            if cell is None or (isinstance(cell, dict) and not cell.get("bytes") and not cell.get("path")):
                continue
            try:
                images.append(write_image_bytes(image_cell_bytes(cell), out_dir))
            except LoaderError as exc:
                raise LoaderError(f"{where}: field {col}: {exc}") from None
            numbers.append(k)
        if not images:
            raise LoaderError(f"{where}: no image (image_1..image_7 are all empty); every MMMU item has image_1")
        qtype = str(row["question_type"])
        subject = subject_of(item_id)
        meta = {"scoring": "mmmu", "mmmu_answer": answer, "question_type": qtype, "subject": subject,
                "category": subject, "subfield": row.get("subfield"), "img_type": row.get("img_type"),
                "topic_difficulty": row.get("topic_difficulty"), "image_numbers": numbers, "mmmu_id": item_id,
                "task_type": "mmmu"}
        question = str(row["question"])
        common = {"id": f"mmmu-{item_id}", "images": images, "source": "mmmu", "split": split, "metadata": meta}
        if qtype == "multiple-choice":
            choices = parse_options(row["options"], where)
            golds = answer if isinstance(answer, list) else [answer]
            if not choices or any(g not in LETTERS[: len(choices)] for g in golds):
                raise LoaderError(f"{where}: field answer {row['answer']!r} is not a letter among the "
                                  f"{len(choices)} options")
            return Task(question=with_choices(question, choices), answer=golds[0], answer_type="choice",
                        choices=choices, **common)
        if qtype != "open":
            raise LoaderError(f"{where}: field question_type is {qtype!r}; expected multiple-choice or open")
        first = answer[0] if isinstance(answer, list) else answer
        return Task(question=f"{question}\n\nAnswer the question using a single word or phrase.", answer=first,
                    answer_type="text", **common)
