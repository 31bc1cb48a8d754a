"""Any local Hugging Face `datasets` folder: tasks saved with `tasks_to_dataset(...).save_to_disk`
(or pushed and downloaded elsewhere), or another dataset whose columns are named in the options.

    load_benchmark("hf", "my_tasks_ds/")                                            # our columns
    load_benchmark("hf", "other_ds/", question="query", answer="label", image="img", answer_type="choice")

The folder is read with `datasets.load_from_disk` when it was written by `save_to_disk`, otherwise with
`datasets.load_dataset(<folder>)` on its data files (parquet, JSON lines, CSV); nothing is downloaded. Embedded
images are written to `image_dir` as PNG files named by content hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError
from data.task_dataset import columns_to_tasks, dataset_to_tasks, load_local_dataset
from rollout.task import Task

OUR_COLUMNS = {"id", "images", "question", "answer", "answer_type"}


class HFDatasetLoader(Loader):
    name: ClassVar[str] = "hf"
    description: ClassVar[str] = "a local Hugging Face datasets folder (our task columns, or columns named in options)"
    homepage: ClassVar[str] = "https://huggingface.co/docs/datasets"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             split: str | None = None, question: str | None = None, answer: str | None = None,
             image: str | None = None, answer_type: str = "text", choices: str | None = None,
             **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"hf: unknown option(s) {', '.join(options)}; valid: split, question, answer, image, "
                              "answer_type, choices")
        try:
            ds = load_local_dataset(path, split=split)
        except (FileNotFoundError, ValueError) as exc:
            raise LoaderError(f"hf: {exc}") from exc
        if limit is not None:
            ds = ds.select(range(min(limit, ds.num_rows)))
        out_dir = image_dir or self.default_image_dir(path)
        try:
            if OUR_COLUMNS <= set(ds.column_names) and question is None:
                return dataset_to_tasks(ds, image_dir=out_dir)
            if not (question and answer and image):
                raise LoaderError(f"hf: {path} does not have the task columns ({', '.join(sorted(OUR_COLUMNS))}); "
                                  f"name its columns with question=, answer=, image= (columns: {', '.join(ds.column_names)})")
            return columns_to_tasks(ds, image_dir=out_dir, id_prefix=path.name, question=question, answer=answer,
                                    image=image, answer_type=answer_type, choices=choices, source=f"hf/{path.name}")
        except ValueError as exc:
            if isinstance(exc, LoaderError):
                raise
            raise LoaderError(f"hf: {path}: {exc}") from exc
