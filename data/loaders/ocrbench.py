"""OCRBench (Liu et al., 2024): 1000 OCR questions over 29 datasets, and its rotated / flipped variants.

Get it: from https://github.com/Yuliang-Liu/MultimodalOCR (the OCRBench folder: `OCRBench.json` plus the
`OCRBench_Images/` archive linked from its README), on a machine with internet. Expected layout (the one the
official evaluation scripts read, `--OCRBench_file` and `--image_folder`):

    OCRBench/
      OCRBench.json        [{"dataset_name": "IIIT5K", "id": 0, "image_path": "IIIT5K/xxx.png",
                             "question": "what is written in the image?", "answers": ["Emerald"] or "Emerald",
                             "type": "Regular Text Recognition"}, ...]
      OCRBench_Images/     IIIT5K/..., svt/..., ...

Pass the folder (or the JSON file; `image_root=` overrides where images are looked up). The repository's own
layout, `OCRBench/json_files/OCRBench.json` with `OCRBench_Images/` inside `OCRBench/` or beside it, is found too.
Also read: VLMEvalKit's `OCRBench.tsv` (`codevl data convert vlmevalkit OCRBench.tsv`, `data.loaders.vlmevalkit`).

Quirk of the published file: `id` is not unique (113 ids are shared by 256 items, numbered per source dataset), so
task ids come from the row position: `ocrbench-<row>` (0-based), with the published id kept in
`metadata["ocrbench_id"]`. Scoring as published (`metadata["scoring"] = "ocrbench"`, `rewards.benchmark_scoring`):
correct when any acceptable answer (`metadata["answers"]`) is a substring of the prediction, both lowercased; for
HME100k formulas (`metadata["ignore_spaces"]`) spaces are removed and case is kept.

Transformed variants (CodeVision's OCRBench with R90 / R180 / R270 / flip H / flip V): pass `transforms="all"` (or a
list) to `load_benchmark`, which writes the transformed images to `image_dir` and lists the inverse op as required
(`data.transformed_tasks`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, progress_bar, require, take
from rollout.task import Task


HME100K = "HME100k"
HME_TYPE = "Handwritten Mathematical Expression Recognition"


def ocrbench_metadata(answers: list[str], dataset_name: str | None, qtype: str, published_id: Any) -> dict[str, Any]:
    """Task metadata of an OCRBench item: the acceptable answers and the published scoring rule."""
    hme = dataset_name == HME100K or (dataset_name is None and qtype == HME_TYPE)
    return {"answers": answers, "scoring": "ocrbench", "match": "contains", "ignore_spaces": hme,
            "dataset_name": dataset_name, "type": qtype, "ocrbench_id": published_id, "task_type": "ocrbench"}


class OCRBenchLoader(Loader):
    name: ClassVar[str] = "ocrbench"
    description: ClassVar[str] = "OCRBench: text recognition, scene/doc VQA, KIE, handwritten math (1000 items)"
    homepage: ClassVar[str] = "https://github.com/Yuliang-Liu/MultimodalOCR"

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             image_root: str | None = None, **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"ocrbench: unknown option(s) {', '.join(options)}; valid: image_root (and transforms "
                              "for any loader)")
        file = path
        if path.is_dir():  # the folder as documented, or the repository's OCRBench/ (json_files/OCRBench.json)
            file = next((c for c in (path / "OCRBench.json", path / "json_files" / "OCRBench.json",
                                     path / "OCRBench" / "OCRBench.json") if c.exists()), path / "OCRBench.json")
        require(file, "OCRBench.json (from the MultimodalOCR repository's OCRBench folder)", self.name)
        if image_root:
            root = Path(image_root)
        else:  # OCRBench_Images/ next to the JSON, in the folder given, one level up (json_files/..), or beside it
            cands = [file.parent / "OCRBench_Images", path / "OCRBench_Images", file.parent.parent / "OCRBench_Images",
                     path.parent / "OCRBench_Images"]
            root = next((c for c in cands if c.is_dir()), file.parent)
        try:
            items = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{file}: not valid JSON: {exc}") from exc
        if not isinstance(items, list):
            raise LoaderError(f"{file}: expected a JSON list of items (OCRBench.json), got {type(items).__name__}")
        tasks = []
        for n, item in enumerate(progress_bar(take(items, limit), progress, "ocrbench", total=len(items))):
            try:
                answers = item["answers"] if isinstance(item["answers"], list) else [item["answers"]]
                answers = [str(a) for a in answers]
                image = root / item["image_path"]
                require(image, f"image {item['image_path']} under {root} (image_root)", self.name)
                tasks.append(Task(
                    id=f"ocrbench-{n}", images=[str(image.resolve())], question=item["question"],
                    answer=answers[0], answer_type="text", source="ocrbench", split="test",
                    metadata=ocrbench_metadata(answers, item["dataset_name"], item["type"], item.get("id"))))
            except KeyError as exc:
                raise LoaderError(f"{file}: item {n}: missing field {exc}; expected dataset_name, image_path, "
                                  "question, answers, type") from exc
        return tasks
