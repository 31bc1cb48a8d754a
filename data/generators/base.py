"""What a synthetic task generator is, and how many of its tasks are produced and written.

A generator is a class with a `name`, a pydantic `Config` (unknown keys are errors that list the valid ones) and
`sample(rng, index) -> Sample`. A `Sample` holds the rendered image(s), every field of the task, and `debug`: the
ground truth behind the answer (the upright image, the target's pixel mask, the geometry), which tests use to check
the answer and which is never written.

Determinism: task `index` under `seed` draws from its own numpy Generator seeded by (seed, generator name, index),
so a task does not depend on how many workers made the others or in what order; ids are `<name>-<seed>-<index>`.

`generate_to_dir` writes `tasks.jsonl` plus `images/`, rendering and encoding in worker processes (image encoding is
most of the cost), with a progress bar; rows are written in index order.
"""

from __future__ import annotations

import abc
import multiprocessing as mp
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from rollout.task import Task


class GeneratorConfig(BaseModel):
    """Settings shared by all generators; each generator's `Config` subclasses this."""

    model_config = ConfigDict(extra="forbid")

    image_format: Literal["png", "jpeg"] = Field("png", description="png is lossless (ground truth exact); jpeg is "
                                                                    "smaller for big scenes")
    jpeg_quality: int = Field(95, ge=50, le=100)
    png_compress_level: int = Field(1, ge=0, le=9, description="1 = fast; 6 = smaller files")
    font_files: list[str] = Field(default_factory=list, description="extra TrueType fonts; default: Pillow's own")
    split: str = "train"


@dataclass
class Sample:
    """One generated task before it is written: images in memory, task fields, and the ground truth (`debug`)."""

    images: list[Image.Image]
    question: str
    answer: str | float | list[float]
    answer_type: str
    choices: list[str] | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    required_ops: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    debug: dict[str, Any] = field(default_factory=dict)

    def to_task(self, task_id: str, image_paths: list[str], *, source: str, split: str) -> Task:
        return Task(id=task_id, images=image_paths, question=self.question, answer=self.answer,
                    answer_type=self.answer_type, choices=self.choices, evidence=self.evidence,
                    required_ops=self.required_ops, source=source, split=split,
                    metadata=self.metadata)


def rng_for(seed: int, name: str, index: int) -> np.random.Generator:
    """The Generator of task `index` of generator `name` under `seed` (independent of every other task)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(index)]))


class Generator(abc.ABC):
    """Base class: subclasses set `name`, `description`, `Config` and implement `sample`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[GeneratorConfig]] = GeneratorConfig

    def __init__(self, config: GeneratorConfig | dict[str, Any] | None = None) -> None:
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = self.Config.model_validate(config)
        elif not isinstance(config, self.Config):
            raise TypeError(f"{self.name} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        """Render task `index` from `rng` (all randomness must come from `rng`)."""

    def task_id(self, seed: int, index: int) -> str:
        return f"{self.name}-{seed}-{index:06d}"

    def make(self, index: int, seed: int = 0) -> Sample:
        """Task `index` under `seed` (deterministic), with its metadata stamped with generator, seed and index."""
        s = self.sample(rng_for(seed, self.name, index), index)
        s.metadata = {"generator": self.name, "seed": seed, "index": index, **s.metadata}
        if s.images:
            s.metadata.setdefault("image_size", list(s.images[0].size))
        return s

    def write(self, sample: Sample, task_id: str, image_dir: Path) -> Task:
        """Save the sample's images under `image_dir` and return its Task (absolute image paths)."""
        image_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        paths = []
        for i, im in enumerate(sample.images):
            ext = "png" if cfg.image_format == "png" else "jpg"
            p = image_dir / f"{task_id}_{i}.{ext}"
            if cfg.image_format == "png":
                im.save(p, format="PNG", compress_level=cfg.png_compress_level)
            else:
                im.convert("RGB").save(p, format="JPEG", quality=cfg.jpeg_quality)
            paths.append(str(p.resolve()))
        return sample.to_task(task_id, paths, source=f"synthetic/{self.name}", split=cfg.split)


@dataclass
class GenerateResult:
    """What `generate_to_dir` wrote."""

    path: Path
    count: int
    seconds: float

    @property
    def tasks_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


# ---- parallel writing ---------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(name: str, config: dict[str, Any], seed: int, out_dir: str) -> None:
    from data.generators import get_generator

    _WORKER["gen"] = get_generator(name, config)
    _WORKER["seed"] = seed
    _WORKER["out"] = Path(out_dir)


def _init_pool_worker(name: str, config: dict[str, Any], seed: int, out_dir: str) -> None:
    """A pool worker leaves Ctrl-C to the parent, which stops the pool and cleans up (no worker tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(name, config, seed, out_dir)


def _work(index: int) -> dict[str, Any]:
    from data.task_file import task_row

    gen: Generator = _WORKER["gen"]
    seed: int = _WORKER["seed"]
    out: Path = _WORKER["out"]
    task = gen.write(gen.make(index, seed), gen.task_id(seed, index), out / "images")
    return task_row(task, out)


def _rows(name: str, config: dict[str, Any], seed: int, out_dir: Path, indices: range, workers: int
          ) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        _init_worker(name, config, seed, str(out_dir))
        for i in indices:
            yield _work(i)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_pool_worker, initargs=(name, config, seed, str(out_dir))) as pool:
        yield from pool.imap(_work, indices, chunksize=max(1, min(16, len(indices) // (workers * 8) or 1)))


def generate_to_dir(name: str, n: int, out_dir: str | Path, *, seed: int = 0, config: dict[str, Any] | None = None,
                    workers: int | None = None, progress: bool = True, start: int = 0,
                    filename: str = "tasks.jsonl") -> GenerateResult:
    """Generate tasks `start .. start+n-1` of generator `name` into `out_dir` (`tasks.jsonl`, `images/`)."""
    import json

    from data.generators import get_generator

    get_generator(name, config)  # validate the name and config here, before any worker starts
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    path = out / filename
    tmp = path.with_name(path.name + ".tmp")
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"synth {name}", unit="task")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for row in _rows(name, dict(config or {}), seed, out, range(start, start + n), workers):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
                if bar is not None:
                    bar.update(1)
        tmp.replace(path)
    finally:
        if bar is not None:
            bar.close()
    return GenerateResult(path=path, count=count, seconds=time.perf_counter() - t0)
