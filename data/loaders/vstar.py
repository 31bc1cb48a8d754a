"""V* Bench (Wu & Xie, 2023): 191 multiple-choice questions about small objects in high-resolution images.

Get it: `huggingface-cli download craigwu/vstar_bench --repo-type dataset --local-dir vstar_bench` on a machine with
internet (https://huggingface.co/datasets/craigwu/vstar_bench), then copy the folder here. Expected layout:

    vstar_bench/
      test_questions.jsonl          {"image": "direct_attributes/sa_4690.jpg", "text": "What is the material of the
                                     glove?\\n(A) rubber\\n(B) cotton\\n...\\nAnswer with the option's letter ...",
                                     "category": "direct_attributes", "question_id": 0, "label": "A"}
      direct_attributes/            sa_4690.jpg + sa_4690.json, ... (115 items)
      relative_position/            ... (76 items)

Each image's JSON annotation holds `target_object` (names), `bbox` ([x, y, w, h] per object), `question` and
`options` (the first option is the correct one). The loader joins them: the question text and label come from
`test_questions.jsonl`; the objects' boxes become evidence boxes (clipped to the image), and `crop` is listed as
required (the objects are small: V* is the visual-search benchmark). Without `test_questions.jsonl` (older copies)
the questions are built from the annotations, with the options in a fixed pseudo-random order per item (seeded by
the file name) so that the correct one is not always (A).
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, parse_option_lines, progress_bar, require, take
from data.question_text import letter, with_choices
from rollout.task import Task

CATEGORIES = ("direct_attributes", "relative_position")


def _evidence(annotation: dict[str, Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    w, h = size
    names = annotation.get("target_object") or []
    out = []
    for i, b in enumerate(annotation.get("bbox") or []):
        x, y, bw, bh = (float(v) for v in b)
        box = [max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)]
        if box[2] > box[0] and box[3] > box[1]:
            out.append({"box": box, "image": 0, "label": names[i] if i < len(names) else None})
    return out


class VStarLoader(Loader):
    name: ClassVar[str] = "vstar"
    description: ClassVar[str] = "V* Bench: small objects in high-resolution images (attributes, relative position)"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/craigwu/vstar_bench"

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             require_crop: bool = True, **options: Any) -> list[Task]:
        from PIL import Image

        if options:
            raise LoaderError(f"vstar: unknown option(s) {', '.join(options)}; valid: require_crop")
        root = require(path, "the vstar_bench folder (test_questions.jsonl, direct_attributes/, relative_position/)",
                       self.name)
        if root.is_file():
            root = root.parent
        rows = self._rows(root)
        tasks = []
        for row in progress_bar(take(rows, limit), progress, "vstar"):
            image = root / row["image"]
            require(image, f"the image {row['image']} listed in test_questions.jsonl", self.name)
            ann_path = image.with_suffix(".json")
            ann = json.loads(ann_path.read_text()) if ann_path.exists() else {}
            with Image.open(image) as im:
                size = im.size
            choices = parse_option_lines(row["text"])
            evidence = _evidence(ann, size)
            tasks.append(Task(
                id=f"vstar-{row['category']}-{row['question_id']}", images=[str(image.resolve())],
                question=row["text"], answer=row["label"], answer_type="choice", choices=choices or None,
                evidence=evidence, required_ops=["crop"] if (require_crop and evidence) else [],
                source="vstar", split="test",
                metadata={"category": row["category"], "question_id": row["question_id"], "task_type": "vstar",
                          "image_size": list(size), "target_object": ann.get("target_object")}))
        return tasks

    @staticmethod
    def _label_from_annotation(root: Path, image: str, text: str) -> str:
        ann_path = (root / image).with_suffix(".json")
        if not ann_path.exists():
            raise LoaderError(f"vstar: test_questions.jsonl has no label for {image} and {ann_path} is missing")
        correct = json.loads(ann_path.read_text())["options"][0]
        options = parse_option_lines(text)
        if correct not in options:
            raise LoaderError(f"vstar: {ann_path}: the correct option {correct!r} is not among the question's options")
        return letter(options.index(correct))

    def _rows(self, root: Path) -> list[dict[str, Any]]:
        qfile = root / "test_questions.jsonl"
        if qfile.exists():
            rows = []
            for n, line in enumerate(qfile.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    label = r.get("label")
                    if label is None:  # copies from before the labels were uploaded: the annotation's first option
                        label = self._label_from_annotation(root, r["image"], r["text"])
                    rows.append({"image": r["image"], "text": r["text"], "category": r["category"],
                                 "question_id": r["question_id"], "label": str(label).strip()})
                except (json.JSONDecodeError, KeyError) as exc:
                    raise LoaderError(f"{qfile}:{n}: expected JSON with image, text, category, question_id, label "
                                      f"({type(exc).__name__}: {exc})") from exc
            return rows
        rows = []
        for cat in CATEGORIES:
            for ann_path in sorted((root / cat).glob("*.json")) if (root / cat).is_dir() else []:
                ann = json.loads(ann_path.read_text())
                try:
                    options, question = list(ann["options"]), ann["question"]
                except KeyError as exc:
                    raise LoaderError(f"{ann_path}: annotation lacks {exc}; expected question, options, bbox") from exc
                order = list(range(len(options)))
                random.Random(zlib.crc32(ann_path.name.encode())).shuffle(order)
                shuffled = [options[i] for i in order]
                image = next((p for p in ann_path.parent.glob(ann_path.stem + ".*") if p.suffix != ".json"), None)
                if image is None:
                    raise LoaderError(f"{ann_path}: no image file next to it")
                rows.append({"image": f"{cat}/{image.name}", "text": with_choices(question, shuffled),
                             "category": cat, "question_id": ann_path.stem, "label": letter(order.index(0))})
        if not rows:
            raise LoaderError(f"vstar: {root} has neither test_questions.jsonl nor annotated images under "
                              f"{' or '.join(CATEGORIES)}/; expected the craigwu/vstar_bench folder")
        return rows
