"""MathVerse (Zhang et al., 2024): 788 visual math problems, each in five versions that move information from the
text into the diagram (Text Dominant, Text Lite, Vision Intensive, Vision Dominant, Vision Only): 3940 testmini items.

Get it: https://huggingface.co/datasets/AI4Math/MathVerse (`testmini.json` + `images.zip`, or `testmini.parquet`
with the images inside), also https://github.com/ZrrSkywalker/MathVerse (`data/testmini.json`). Both load:

    MathVerse/
      testmini.json   [{"sample_index": "3421", "problem_index": "685", "problem_version": "Text Dominant",
                        "question": "...", "image": "images_version_1-4/image_685.png", "answer": "14",
                        "question_type": "free-form" | "multi-choice",
                        "metadata": {"split", "source", "subject", "subfield"},
                        "query_wo": "Please directly answer ...", "query_cot": "Please first conduct reasoning ..."}]
      images/images_version_1-4/image_685.png ...       (images.zip unpacked; `images_version_*` directly under
                                                          the folder also works)
    MathVerse/testmini.parquet                           the same fields, `image` as {"bytes", "path"}

Pass the folder (`testmini.parquet` is preferred when both are there: it holds the images; `file=` names another
JSON or parquet in it, e.g. `testmini_text_only.json`) or a file. The
question is MathVerse's `query_wo` (the prompt of its leaderboard's primary "w/o" score; `prompt="cot"` takes
`query_cot`). Multiple-choice answers are option letters ("D", also written "(C)"); the options written in the
question ("Choices:\\nA:40°", "Choice:\\nA. 090^\\circ T") become the task's choices when present (Vision Only items
show them in the image). A few published multiple-choice answers are not one letter (the option's text, "False";
two letters, "C\\nD"): those items are text tasks with that answer, scored as published (below). `metadata["category"]` is the
problem version. The Text Only version has no image and is skipped (counted in the log): tasks here are visual.

Scoring (`metadata["scoring"] = "mathverse"`, `rewards.benchmark_scoring`): MathVerse's official evaluation asks
GPT-4 to extract the answer and to judge it; its rule-based path (`--quick_match`) compares the extraction with the
answer string. That path is used, with the extraction done by rules (see `rewards/benchmark_scoring.py`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, parse_option_lines, \
    progress_bar, write_image_bytes
from data.question_text import LETTERS
from rollout.task import Task

logger = logging.getLogger(__name__)

_GOLD_LETTER = re.compile(r"^\(?([A-Z])\)?$")  # "D" or "(C)"
FIELDS = ("sample_index", "problem_version", "question", "image", "answer", "question_type")
PROMPTS = {"wo": "query_wo", "cot": "query_cot"}


def _file(path: Path, file: str | None) -> Path:
    if path.is_file():
        return path
    # the parquet first: it holds its images, while the JSON needs images.zip unpacked (a HF snapshot has both)
    names = [file] if file else ["testmini.parquet", "testmini.json", "data/testmini.json"]
    for name in names:
        if (path / name).exists():
            return path / name
    raise LoaderError(f"mathverse: {path} holds none of {', '.join(names)}; expected the AI4Math/MathVerse folder "
                      "(testmini.json + images/, or testmini.parquet)")


def _rows(f: Path) -> list[dict[str, Any]]:
    if f.suffix == ".parquet":
        return list(iter_parquet_rows([f], list(FIELDS)))
    try:
        data = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise LoaderError(f"{f}: not valid JSON ({exc}); expected MathVerse's testmini.json (a list of items)") from None
    if not isinstance(data, list):
        raise LoaderError(f"{f}: expected a JSON list of items, got {type(data).__name__}")
    return data


class MathVerseLoader(Loader):
    name: ClassVar[str] = "mathverse"
    description: ClassVar[str] = "MathVerse: visual math in five text/vision versions (testmini, 3940 items)"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/AI4Math/MathVerse"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             file: str | None = None, prompt: str = "wo", **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"mathverse: unknown option(s) {', '.join(options)}; valid: file, prompt")
        if prompt not in PROMPTS:
            raise LoaderError(f"mathverse: prompt must be wo or cot, got {prompt!r}")
        if not path.exists():
            raise LoaderError(f"mathverse: {path} not found; expected the AI4Math/MathVerse folder or testmini.json")
        f = _file(path, file)
        rows = _rows(f)
        out_dir = image_dir or self.default_image_dir(f)
        tasks: list[Task] = []
        text_only = 0
        for n, row in enumerate(progress_bar(rows, progress, "mathverse", total=len(rows))):
            if limit is not None and len(tasks) >= limit:
                break
            where = f"{f}: item {n} (sample_index {row.get('sample_index')})"
            missing = [k for k in FIELDS if k not in row]
            if missing:
                raise LoaderError(f"{where}: missing field(s) {', '.join(missing)}; expected MathVerse's fields "
                                  f"({', '.join(FIELDS)})")
            image = self._image(row.get("image"), f, out_dir, where)
            if image is None:
                text_only += 1
                continue
            tasks.append(self._task(row, image, prompt, where))
        if text_only:
            logger.warning("mathverse: %d item(s) have no image (Text Only version) and were not loaded", text_only)
        if not tasks and text_only and limit != 0:
            raise LoaderError(f"{f}: every item is text-only (no image); load testmini.json, not the text-only file")
        return tasks

    @staticmethod
    def _image(cell: Any, f: Path, out_dir: Path, where: str) -> str | None:
        if cell is None or cell == "" or (isinstance(cell, dict) and not cell.get("bytes") and not cell.get("path")):
            return None
        if isinstance(cell, dict):
            try:
                return write_image_bytes(image_cell_bytes(cell), out_dir)
            except LoaderError as exc:
                raise LoaderError(f"{where}: field image: {exc}") from None
        rel = str(cell)
        for base in (f.parent, f.parent / "images", f.parent.parent, f.parent.parent / "images"):
            if (base / rel).exists():
                return str((base / rel).resolve())
        raise LoaderError(f"{where}: field image {rel!r} not found under {f.parent} or {f.parent / 'images'}; unpack "
                          "MathVerse's images.zip next to the JSON file")

    @staticmethod
    def _task(row: dict[str, Any], image: str, prompt: str, where: str) -> Task:
        meta_in = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
        qtype, answer = str(row["question_type"]), str(row["answer"]).strip()
        if qtype not in ("multi-choice", "free-form"):
            raise LoaderError(f"{where}: field question_type is {qtype!r}; expected multi-choice or free-form")
        query = row.get(PROMPTS[prompt]) or row["question"]
        meta = {"scoring": "mathverse", "answer_text": answer, "question_type": qtype,
                "problem_index": str(row.get("problem_index")), "problem_version": row["problem_version"],
                "category": row["problem_version"], "task_type": "mathverse",
                **{k: v for k, v in (meta_in or {}).items() if k in ("source", "subject", "subfield")}}
        common = {"id": f"mathverse-{row['sample_index']}", "images": [image], "question": str(query),
                  "source": "mathverse", "split": "testmini", "metadata": meta}
        if qtype == "multi-choice":
            choices = parse_option_lines(str(row["question"])) or None
            meta["options"] = choices
            m = _GOLD_LETTER.match(answer)
            if m is None:  # published quirks: the option's text ("False"), several letters ("C\nD")
                return Task(answer=answer, answer_type="text", **common)
            letter = m.group(1)
            if choices is not None and LETTERS.index(letter) >= len(choices):
                choices = None  # the question's lines are not the full option list (options in the image)
            return Task(answer=letter, answer_type="choice", choices=choices, **common)
        return Task(answer=answer, answer_type="text", **common)
