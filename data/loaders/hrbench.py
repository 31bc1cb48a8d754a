"""HR-Bench 4K / 8K (Wang et al., AAAI 2025): multiple-choice perception questions on 4K and 8K images.

Get it: https://huggingface.co/datasets/DreamMr/HR-Bench (files `hr_bench_4k.parquet`, `hr_bench_8k.parquet`, or the
same tables as `hr_bench_4k.tsv` / `hr_bench_8k.tsv`, VLMEvalKit's format, whose rule that an image cell of 64
characters or fewer names another row's `index` applies to both). Point the loader at one file (or at the
folder and pick one with `version=4k|8k`). Columns:

    index, question, answer (the option letter), category (single = FSP, cross = FCP), A, B, C, D,
    cycle_category, image (the image as base64 text; an encoded-bytes or {bytes, path} cell is read too)

Images are decoded from base64 and written once to `image_dir` (default: `<file stem>_images/` next to the file),
named by content hash. The options are appended to the question in the V* style. HR-Bench publishes no evidence
boxes, so tasks carry none (and no required ops); rewards fall back to judge-based step scoring for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, image_cell_bytes, iter_parquet_rows, progress_bar, take, \
    write_image_bytes
from data.loaders.vlmevalkit import read_tsv, resolve_image_refs
from data.question_text import with_choices
from rollout.task import Task

COLUMNS = ("index", "question", "answer", "category", "A", "B", "C", "D", "image")


def _tsv_rows(path: Path) -> list[dict[str, Any]]:
    """The TSV's rows (VLMEvalKit's format: an image cell of <= 64 characters names another row's index)."""
    return read_tsv(path, COLUMNS)


class HRBenchLoader(Loader):
    name: ClassVar[str] = "hrbench"
    description: ClassVar[str] = "HR-Bench 4K/8K: fine-grained single- and cross-instance perception on huge images"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/DreamMr/HR-Bench"
    embeds_images: ClassVar[bool] = True

    def _file(self, path: Path, version: str | None) -> Path:
        if path.is_file():
            return path
        if path.is_dir():
            if version is None:
                raise LoaderError(f"hrbench: {path} is a folder; pass version=4k or version=8k (or the file itself)")
            for ext in (".parquet", ".tsv"):
                f = path / f"hr_bench_{version}{ext}"
                if f.exists():
                    return f
            raise LoaderError(f"hrbench: no hr_bench_{version}.parquet or .tsv in {path}")
        raise LoaderError(f"hrbench: {path} not found; expected hr_bench_4k.parquet / hr_bench_8k.tsv (HR-Bench)")

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             version: str | None = None, **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"hrbench: unknown option(s) {', '.join(options)}; valid: version")
        file = self._file(path, version)
        tag = "8k" if "8k" in file.name.lower() else "4k" if "4k" in file.name.lower() else (version or "hr")
        rows = (resolve_image_refs(list(iter_parquet_rows([file], list(COLUMNS))), str(file))
                if file.suffix == ".parquet" else _tsv_rows(file))
        out_dir = image_dir or self.default_image_dir(file)
        tasks = []
        for n, row in enumerate(progress_bar(take(rows, limit), progress, f"hrbench-{tag}")):
            try:
                choices = [str(row[c]) for c in "ABCD" if row.get(c) not in (None, "") and str(row[c]) != "nan"]
                image = write_image_bytes(image_cell_bytes(row["image"]), out_dir)  # base64 text (or bytes)
                tasks.append(Task(
                    id=f"hrbench_{tag}-{row['index']}", images=[image],
                    question=with_choices(str(row["question"]), choices, instruction="Answer with the option's letter "
                                          "from the given choices directly."),
                    answer=str(row["answer"]).strip(), answer_type="choice", choices=choices, source=f"hrbench_{tag}",
                    split="test", metadata={"category": row.get("category"), "cycle_category": row.get("cycle_category"),
                                            "task_type": f"hrbench_{tag}", "index": row["index"]}))
            except (KeyError, ValueError) as exc:
                raise LoaderError(f"{file}: row {n + 1}: {exc}") from exc
        return tasks
