"""SFT data: trajectory JSONL files indexed once, featurised lazily, mixed by weight, with an eval split.

Indexing reads every row once: it validates the row (a bad row raises `SFTDataError` naming file:line), checks
that every image decodes (by its header and checksums, not a full decode), renders the row to tokens and computes
its length *after image expansion* from the image sizes and the image processor's resize rule (so a 4K image
bounded by `model.max_pixels` counts as the tokens it will really become). Rows longer than `data.max_length` are
dropped and counted, or stop the run naming the row (`data.overlong`); nothing is ever truncated, so an image is
never cut in half. Only byte offsets and lengths stay in memory: a row's images are decoded when the row is used.

Mixing: a file's `weight` scales how many of its rows an epoch holds (2.0: each twice; 0.5: a seeded half).
Eval split: `eval_files`, or `eval_fraction` of the train rows held out by task id (the rollouts of one task never
straddle train and eval).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rollout.expand import trainer_inputs
from rollout.render import ChatRenderer
from rollout.trajectory import ImageStore, Trajectory
from train.sft_labels import sft_tokens


class SFTDataError(ValueError):
    """A data file or row that cannot be trained on; the message names the file and line."""


@dataclass(frozen=True)
class SampleRef:
    """Where one trajectory is (file, 1-based line, byte offset) and how long it is after image expansion."""

    path: str
    line: int
    offset: int
    length: int
    task_id: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class IndexReport:
    """What indexing kept and dropped, per file (written to the run directory)."""

    kept: dict[str, int] = field(default_factory=dict)
    dropped_overlong: list[tuple[str, int]] = field(default_factory=list)  # (file:line, expanded length)

    def summary(self) -> str:
        kept = ", ".join(f"{Path(k).name}: {v}" for k, v in self.kept.items())
        dropped = f"; dropped {len(self.dropped_overlong)} longer than max_length" if self.dropped_overlong else ""
        return f"{sum(self.kept.values())} trajectories ({kept}){dropped}"

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped_overlong": [{"row": w, "length": n} for w, n in self.dropped_overlong]}


class _SizeOnlyStore(ImageStore):
    """Checks that each referenced image decodes and returns a zero-copy array of its shape (no pixels read)."""

    def read(self, ref: str) -> np.ndarray:
        from PIL import Image

        path = self.root / ref
        try:
            with Image.open(path) as im:
                size, bands = im.size, len(im.getbands())
                im.verify()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"image {path} does not decode: {exc}") from exc
        shape = (size[1], size[0]) if bands == 1 else (size[1], size[0], bands)
        return np.broadcast_to(np.zeros((), np.uint8), shape)


def image_tokens(processor: Any, height: int, width: int) -> int:
    """How many `<|image_pad|>` tokens an image of this size becomes under the processor's resize bounds."""
    ip = processor.image_processor
    return int(ip.get_number_of_image_patches(height, width, {})) // int(ip.merge_size) ** 2


def expanded_length(traj: Trajectory, n_tokens: int, processor: Any) -> int:
    """Tokens after expansion: each image's one placeholder becomes `image_tokens` tokens."""
    return n_tokens + sum(image_tokens(processor, im.array.shape[0], im.array.shape[1]) - 1 for im in traj.images)


def _rows(path: Path) -> Any:
    """(line number, byte offset, text) of each non-empty line."""
    offset = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if raw.strip():
                yield lineno, offset, raw
            offset += len(raw)


def index_file(path: str | Path, processor: Any, renderer: ChatRenderer, *, max_length: int, overlong: str,
               protocol: str | None, report: IndexReport) -> list[SampleRef]:
    """Validate and measure every row of one trajectory JSONL file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise SFTDataError(f"{path}: no such file (a trajectory JSONL written by `codevl data curate`, the oracle, "
                           "or saved rollouts)" if not path.exists() else f"{path}: is a directory, not a JSONL file")
    store = _SizeOnlyStore(path.parent)
    refs: list[SampleRef] = []
    for lineno, offset, raw in _rows(path):
        where = f"{path}:{lineno}"
        try:
            traj = Trajectory.from_dict(json.loads(raw), store)
        except (ValueError, KeyError, TypeError) as exc:
            raise SFTDataError(f"{where}: not a valid trajectory: {exc}") from None
        if protocol is not None and traj.protocol != protocol:
            raise SFTDataError(f"{where}: trajectory is in protocol {traj.protocol!r} but data.protocol is "
                               f"{protocol!r}; train on data written in the protocol the model will act in, or change "
                               "data.protocol")
        if not any(t.role == "assistant" for t in traj.turns):
            raise SFTDataError(f"{where}: trajectory has no assistant turn, nothing to learn")
        ids, mask = sft_tokens(traj, renderer)
        n = expanded_length(traj, len(ids), processor)
        if n > max_length:
            if overlong == "error":
                raise SFTDataError(f"{where}: {n} tokens after image expansion > data.max_length ({max_length}); "
                                   "raise data.max_length, lower model.max_pixels, or set data.overlong=drop")
            report.dropped_overlong.append((where, n))
            continue
        refs.append(SampleRef(str(path), lineno, offset, n, traj.task.id))
    if not refs and not report.dropped_overlong:
        raise SFTDataError(f"{path}: no trajectories in the file")
    report.kept[str(path)] = report.kept.get(str(path), 0) + len(refs)
    return refs


def weighted(refs: Sequence[SampleRef], weight: float, rng: random.Random) -> list[SampleRef]:
    """`weight` copies of `refs` per epoch: whole copies plus a seeded subset for the fraction."""
    whole, frac = int(math.floor(weight)), weight - math.floor(weight)
    out = list(refs) * whole
    extra = round(frac * len(refs))
    if extra:
        out += rng.sample(list(refs), extra)
    return out


def split_by_task(refs: Sequence[SampleRef], fraction: float, seed: int) -> tuple[list[SampleRef], list[SampleRef]]:
    """(train, eval): a seeded `fraction` of the task ids held out, with all their trajectories."""
    tasks = sorted({r.task_id for r in refs})
    rng = random.Random(seed)
    rng.shuffle(tasks)
    held = set(tasks[: max(1, round(fraction * len(tasks)))]) if fraction > 0 and len(tasks) > 1 else set()
    return [r for r in refs if r.task_id not in held], [r for r in refs if r.task_id in held]


class SFTDataset:
    """Featurises trajectories lazily: `featurize(ref)` is a dict of 1-D tensors (`input_ids`, `labels`,
    `mm_token_type_ids`) plus `pixel_values` / `image_grid_thw` when the row has images.

    `as_hf_dataset()` wraps it as the `datasets.Dataset` TRL's trainer requires: one row per sample holding only
    where it is and its length, featurised on access (`with_transform`), so no pixels sit in memory."""

    COLUMNS = ("path", "line", "offset", "length", "task_id")

    def __init__(self, refs: Sequence[SampleRef], processor: Any, renderer: ChatRenderer) -> None:
        self.refs = list(refs)
        self.processor = processor
        self.renderer = renderer

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def lengths(self) -> list[int]:
        return [r.length for r in self.refs]

    def trajectory(self, ref: SampleRef) -> Trajectory:
        with open(ref.path, "rb") as f:
            f.seek(ref.offset)
            raw = f.readline()
        try:
            return Trajectory.from_dict(json.loads(raw), ImageStore(Path(ref.path).parent))
        except (ValueError, KeyError, TypeError) as exc:
            raise SFTDataError(f"{ref.where}: changed or unreadable since it was indexed: {exc}") from None

    def featurize(self, ref: SampleRef) -> dict[str, Any]:
        traj = self.trajectory(ref)
        ids, mask = sft_tokens(traj, self.renderer)
        inputs = trainer_inputs(ids, [im.array for im in traj.images], self.processor, loss_mask=mask)
        labels = inputs["input_ids"].clone()
        labels[inputs.pop("loss_mask") == 0] = -100
        out = {"input_ids": inputs["input_ids"][0], "labels": labels[0],
               "mm_token_type_ids": inputs["mm_token_type_ids"][0]}
        if "pixel_values" in inputs:
            out["pixel_values"] = inputs["pixel_values"]
            out["image_grid_thw"] = inputs["image_grid_thw"]
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.featurize(self.refs[i])

    def transform(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """`datasets` transform: rows of (path, line, offset, length, task_id) -> featurised rows."""
        rows = [self.featurize(SampleRef(*(batch[c][i] for c in self.COLUMNS))) for i in range(len(batch["path"]))]
        return {k: [r.get(k) for r in rows] for k in sorted({k for r in rows for k in r})}

    def as_hf_dataset(self) -> Any:
        import datasets

        ds = datasets.Dataset.from_dict({c: [getattr(r, c) for r in self.refs] for c in self.COLUMNS})
        return ds.with_transform(self.transform)


def dataset_lengths(ds: Any) -> list[int]:
    """Per-row lengths of a dataset made by `SFTDataset.as_hf_dataset` (read without featurising)."""
    return [int(x) for x in ds.data.column("length").to_pylist()]
