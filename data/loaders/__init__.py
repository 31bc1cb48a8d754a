"""Benchmark loaders by name: `load_benchmark("vstar", "/data/vstar_bench")` -> list[Task].

Each loader reads the format its benchmark's authors published, from a local path (nothing is downloaded here);
its module docstring gives the expected layout and where to get the files. `transforms=` builds rotated / flipped
copies of any benchmark (`data.transformed_tasks`), e.g. CodeVision's OCRBench and ChartQAPro variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.loaders.base import Loader, LoaderError
from data.loaders.chartqapro import ChartQAProLoader
from data.loaders.hf_dataset import HFDatasetLoader
from data.loaders.hrbench import HRBenchLoader
from data.loaders.mathverse import MathVerseLoader
from data.loaders.mathvision import MathVisionLoader
from data.loaders.mathvista import MathVistaLoader
from data.loaders.mmmu import MMMULoader
from data.loaders.mvtoolbench import MVToolBenchLoader
from data.loaders.ocrbench import OCRBenchLoader
from data.loaders.vlmsareblind import VLMsAreBlindLoader
from data.loaders.vlmevalkit import VLMEvalKitLoader
from data.loaders.visualpuzzles import VisualPuzzlesLoader
from data.loaders.vstar import VStarLoader
from data.transformed_tasks import parse_transforms, transformed_variants
from rollout.task import Task

LOADERS: dict[str, type[Loader]] = {
    cls.name: cls for cls in (VStarLoader, HRBenchLoader, OCRBenchLoader, ChartQAProLoader, MVToolBenchLoader,
                              VLMsAreBlindLoader, MathVistaLoader, MathVerseLoader, MathVisionLoader, MMMULoader,
                              VisualPuzzlesLoader, VLMEvalKitLoader, HFDatasetLoader)
}


def get_loader(name: str) -> Loader:
    try:
        return LOADERS[name]()
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; valid benchmarks: {', '.join(LOADERS)}") from None


def load_benchmark(name: str, path: str | Path, *, image_dir: str | Path | None = None, limit: int | None = None,
                   transforms: str | Sequence[str] | None = None, include_original: bool = True,
                   progress: bool = False, **options: Any) -> list[Task]:
    """Tasks of benchmark `name` read from `path`; `options` are the loader's own (see its docstring).

    `image_dir` receives images embedded in the data files and the transformed copies (default: next to the data).
    `transforms` ("all", "rotate90,flip_h", or a list) adds rotated/flipped copies of every task."""
    loader = get_loader(name)
    p = Path(path).expanduser()
    idir = Path(image_dir).expanduser() if image_dir is not None else None
    tasks = loader.load(p, image_dir=idir, limit=limit, progress=progress, **options)
    ts = parse_transforms(transforms)
    if ts:
        tdir = idir if idir is not None else loader.default_image_dir(p).with_name(f"{name}_transformed_images")
        tasks = transformed_variants(tasks, ts, tdir, include_original=include_original)
    return tasks


__all__ = ["LOADERS", "Loader", "LoaderError", "get_loader", "load_benchmark"]
