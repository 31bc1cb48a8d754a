"""VLMEvalKit's benchmark TSV files (https://github.com/open-compass/VLMEvalKit): VStarBench, HRBench4K/8K,
OCRBench, MathVista_MINI, MathVision / MathVision_MINI, VLMBlind.

Get them: VLMEvalKit downloads `<name>.tsv` into `~/LMUData/` on first use (URLs in its `vlmeval/dataset/*.py`);
copy those files here. Pass one file; the dataset is recognised from the file name (or `dataset=`).

Format (VLMEvalKit's `ImageBaseDataset`): tab-separated, a header row, one question per row, columns

    index      the row's key (unique)
    image      the image as base64 text, or a list of them written as a Python list; a cell of 64 characters or
               fewer is not an image but the `index` of another row whose image it shares (VLMEvalKit's rule for
               saving space); rows without an image are skipped, as VLMEvalKit does
    image_path (instead of `image`) paths of image files, relative to the TSV
    question   the prompt text
    answer     the answer (an option letter for multiple choice)
    A, B, ...  options of multiple-choice datasets (empty cells: fewer options)

plus per-dataset columns: `category` (VStarBench, HRBench, OCRBench: the item type, HME formulas are category
"Handwritten Mathematical Expression Recognition"), VLMBlind's `task` and `answers` (its ground-truth column, as
VLMEvalKit's `VLMBlind.evaluate` reads it; `category` and `answer` are read too), OCRBench's `answer` is a Python list of
acceptable answers; MathVista_MINI has `question_type`, `answer_type`, `precision`, `choices` (a Python list),
`answer_option` (the correct letter), `unit`, `task`, `skills`, and its `question` is MathVista's full query (hint,
question, choices); MathVision's `choices` is a Python list (empty for open questions), its `answer` the letter or
the value, and `category` the subject (the columns VLMEvalKit's `mathv.py` reads); scored by MATH-Vision's rules.

Images are decoded once into `image_dir` (default `<file stem>_images/` next to the file), named by content hash.
Scoring follows each benchmark's published rule where the project has it (`metadata["scoring"]`: OCRBench's
substring rule, MathVista's normalisation).
"""

from __future__ import annotations

import ast
import csv
import sys
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, decode_base64_image, progress_bar, write_image_bytes
from data.loaders.mathvista import mathvista_metadata
from data.loaders.ocrbench import ocrbench_metadata
from data.loaders.vlmsareblind import answer_text, parse_groundtruth
from data.question_text import LETTERS, with_choices
from rollout.task import Task

MAX_REFERENCE_CHARS = 64  # an image cell this short holds another row's index, not an image

DATASETS: dict[str, tuple[str, ...]] = {  # name -> columns it needs besides index/image/question/answer
    "VStarBench": ("A", "B"),
    "HRBench4K": ("A", "B"),
    "HRBench8K": ("A", "B"),
    "OCRBench": ("category",),
    "MathVista_MINI": ("question_type", "answer_type"),
    "MathVision": ("choices",),
    "MathVision_MINI": ("choices",),
    "VLMBlind": (),
}
BASE_COLUMNS = ("index", "question", "answer")


def _cells_to_list(cell: str) -> list[str]:
    """VLMEvalKit's `toliststr`: a cell written as a Python list is a list, anything else one item."""
    s = cell.strip()
    if s.startswith("[") and s.endswith("]"):
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return [cell]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [cell]
    return [cell]


def resolve_image_refs(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Replace image cells of <= 64 characters by the image of the row whose `index` they name (VLMEvalKit's rule);
    rows without an image are dropped. A reference to a missing row, or to a row that is itself a reference, is a
    LoaderError naming the row."""
    rows = [r for r in rows if str(r.get("image") or "").strip() not in ("", "nan")]
    by_index = {str(r["index"]).strip(): str(r["image"]) for r in rows}
    for n, r in enumerate(rows, 1):
        cell = str(r["image"]).strip()
        if len(cell) <= MAX_REFERENCE_CHARS:
            target = by_index.get(cell)
            if target is None or len(target.strip()) <= MAX_REFERENCE_CHARS:
                why = "no row has that index" if target is None else "that row's image is itself a reference"
                raise LoaderError(f"{where}: row {n} (index {r['index']}): the image cell {cell!r} is {len(cell)} "
                                  f"characters, so it names another row's index (VLMEvalKit's rule for cells of "
                                  f"{MAX_REFERENCE_CHARS} characters or fewer), but {why}")
            r["image"] = target
    return rows


def read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a VLMEvalKit TSV as dicts, image references resolved; checks the columns first."""
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            names = list(reader.fieldnames or [])
            missing = [c for c in required if c not in names]
            if "image" not in names and "image_path" not in names:
                missing.append("image (or image_path)")
            if missing:
                raise LoaderError(f"{path}: missing column(s) {', '.join(missing)}; found: {', '.join(names) or 'none'}"
                                  " (expected a VLMEvalKit benchmark TSV with a header row)")
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: not a UTF-8 text file ({exc}); expected a VLMEvalKit TSV") from exc
    return resolve_image_refs(rows, str(path)) if "image" in names else rows


def dataset_of(path: Path, dataset: str | None) -> str:
    """The dataset a TSV holds: `dataset` if given, else recognised from the file name."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise LoaderError(f"vlmevalkit: unknown dataset {dataset!r}; supported: {', '.join(DATASETS)}")
        return dataset
    stem = path.stem.lower()
    for name in sorted(DATASETS, key=len, reverse=True):
        if stem.startswith(name.lower()):
            return name
    raise LoaderError(f"vlmevalkit: cannot tell the dataset from the file name {path.name}; name the file "
                      f"<dataset>.tsv or pass dataset= (one of {', '.join(DATASETS)})")


def _options(row: dict[str, Any]) -> list[str]:
    out = []
    for letter in LETTERS:
        v = row.get(letter)
        if v is None or str(v).strip() in ("", "nan"):
            break
        out.append(str(v))
    return out


class VLMEvalKitLoader(Loader):
    name: ClassVar[str] = "vlmevalkit"
    description: ClassVar[str] = ("VLMEvalKit TSV files: VStarBench, HRBench4K/8K, OCRBench, MathVista_MINI, MathVision, "
                                  "VLMBlind")
    homepage: ClassVar[str] = "https://github.com/open-compass/VLMEvalKit"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             dataset: str | None = None, **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"vlmevalkit: unknown option(s) {', '.join(options)}; valid: dataset")
        if path.is_dir():
            found = sorted(p.name for p in path.glob("*.tsv"))
            raise LoaderError(f"vlmevalkit: {path} is a folder; pass one TSV file"
                              + (f" (found: {', '.join(found)})" if found else " (it holds no .tsv file)"))
        if not path.exists():
            raise LoaderError(f"vlmevalkit: {path} not found; expected a VLMEvalKit TSV such as OCRBench.tsv")
        name = dataset_of(path, dataset)
        base = ("index", "question") if name == "VLMBlind" else BASE_COLUMNS
        rows = read_tsv(path, (*base, *DATASETS[name]))
        if name == "VLMBlind" and rows and "answers" not in rows[0] and "answer" not in rows[0]:
            raise LoaderError(f"{path}: missing column answers (VLMEvalKit's VLMBlind.tsv names the ground truth "
                              f"`answers`; `answer` is read too); found: {', '.join(rows[0])}")
        out_dir = image_dir or self.default_image_dir(path)
        tasks = []
        for n, row in enumerate(progress_bar(rows[:limit] if limit is not None else rows, progress, name), 1):
            try:
                images = self._images(row, path, out_dir)
                tasks.append(self._task(name, row, images))
            except (KeyError, ValueError, SyntaxError) as exc:
                if isinstance(exc, LoaderError):
                    raise
                raise LoaderError(f"{path}: row {n} (index {row.get('index')}): {type(exc).__name__}: {exc}") from exc
        return tasks

    @staticmethod
    def _images(row: dict[str, Any], path: Path, out_dir: Path) -> list[str]:
        if row.get("image"):
            return [write_image_bytes(decode_base64_image(b), out_dir) for b in _cells_to_list(str(row["image"]))]
        paths = []
        for rel in _cells_to_list(str(row["image_path"])):
            p = path.parent / rel
            if not p.exists():
                raise LoaderError(f"{path}: index {row['index']}: image_path {rel} not found under {path.parent}")
            paths.append(str(p.resolve()))
        return paths

    @staticmethod
    def _task(name: str, row: dict[str, Any], images: list[str]) -> Task:
        index = str(row["index"]).strip()
        answer_cell = row["answers"] if name == "VLMBlind" and "answers" in row else row["answer"]
        question, answer = str(row["question"]), str(answer_cell).strip()
        tid = f"{name.lower()}-{index}"
        common = {"source": name.lower(), "split": "test"}
        if name in ("VStarBench", "HRBench4K", "HRBench8K"):
            choices = _options(row)
            return Task(id=tid, images=images, question=with_choices(question, choices), answer=answer,
                        answer_type="choice", choices=choices, **common,
                        metadata={"category": row.get("category"), "index": index, "task_type": name.lower()})
        if name == "OCRBench":
            answers = _cells_to_list(answer)
            return Task(id=tid, images=images, question=question, answer=answers[0], answer_type="text", **common,
                        metadata=ocrbench_metadata(answers, row.get("dataset_name") or None, str(row["category"]),
                                                   index))
        if name in ("MathVision", "MathVision_MINI"):
            cell = str(row.get("choices") or "").strip()
            options = [] if cell in ("", "[]", "nan") else _cells_to_list(cell)
            meta = {"scoring": "mathvision", "answer_text": answer, "options": options, "index": index,
                    "category": row.get("category"), "task_type": "mathvision"}
            if options and len(answer) == 1 and answer in LETTERS[: len(options)]:
                return Task(id=tid, images=images, question=question, answer=answer, answer_type="choice",
                            choices=options, **common, metadata=meta)
            return Task(id=tid, images=images, question=question, answer=answer, answer_type="text", **common,
                        metadata=meta)
        if name == "MathVista_MINI":
            qtype, atype = str(row["question_type"]), str(row["answer_type"])
            choices = _cells_to_list(str(row.get("choices") or "")) if qtype == "multi_choice" else None  # type: ignore[assignment]
            meta = mathvista_metadata(row, answer, index)
            if qtype == "multi_choice":
                choices = [c for c in (choices or []) if c]
                letter = str(row.get("answer_option") or "").strip()
                if letter not in LETTERS[: len(choices)]:
                    if answer not in choices:
                        raise ValueError(f"answer {answer!r} is not among the choices {choices}")
                    letter = LETTERS[choices.index(answer)]
                return Task(id=tid, images=images, question=question, answer=letter, answer_type="choice",
                            choices=choices, **common, metadata=meta)
            if atype in ("integer", "float"):
                return Task(id=tid, images=images, question=question, answer=float(answer), answer_type="number",
                            **common, metadata=meta)
            return Task(id=tid, images=images, question=question, answer=answer, answer_type="text", **common,
                        metadata=meta)
        value, atype = parse_groundtruth(answer)  # VLMBlind
        task = row.get("task") or row.get("category")
        return Task(id=tid, images=images, question=question, answer=value, answer_type=atype,
                    **common, metadata={"task": task, "groundtruth": answer, "index": index,
                                        "task_type": "vlmsareblind", "scoring": "vlmsareblind",
                                        "answer_text": answer_text(answer)})
