"""What a run directory holds, whichever stage wrote it: trajectory files, metrics, config, summaries.

Layouts read (each is what its writer produces):

    RUN/trajectories/*.jsonl        demo rollouts (rollouts.jsonl), evaluation runs (eval.jsonl), codevl infer
    RUN/rollouts/step_XXXXXX.jsonl  RL runs: the rollouts saved every N steps
    RUN/*.jsonl                     a folder of trajectory files (e.g. rescored/<set>/), samples/metrics files aside
    FILE.jsonl                      one trajectory file
    RUN/metrics.jsonl               SFT and RL runs: one JSON object per logged step, always with "step"
    RUN/config.yaml                 the resolved config;  RUN/summary.json: demo or evaluation summary
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOT_TRAJECTORIES = ("samples.jsonl", "metrics.jsonl")
STEP_FILE = re.compile(r"step_(\d+)\.jsonl$")


class RunDirError(ValueError):
    """The path is not a run directory or trajectory file; the message says where it looked."""


def step_of(path: Path) -> int | None:
    """The RL step of a `rollouts/step_XXXXXX.jsonl` file, else None."""
    m = STEP_FILE.search(path.name)
    return int(m.group(1)) if m else None


def trajectory_files(path: str | Path, *, required: bool = True) -> list[Path]:
    """The trajectory JSONL files of `path` (see the module docstring), RL steps in step order."""
    p = Path(path)
    if not p.exists():
        raise RunDirError(f"{p} does not exist (give a run directory or a trajectories .jsonl file)")
    if p.is_file():
        if p.suffix != ".jsonl":
            raise RunDirError(f"{p} is not a .jsonl trajectory file")
        return [p]
    files = sorted((p / "trajectories").glob("*.jsonl"))
    files += sorted((p / "rollouts").glob("*.jsonl"), key=lambda f: (step_of(f) is None, step_of(f) or 0, f.name))
    if not files:
        files = sorted(f for f in p.glob("*.jsonl") if f.name not in NOT_TRAJECTORIES)
    if not files and required:
        raise RunDirError(f"no trajectories in {p}: looked for trajectories/*.jsonl, rollouts/step_*.jsonl and *.jsonl")
    return files


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl (each a JSON object with "step"); a bad line is an error naming file:line. A torn
    last line (a run killed while writing) is skipped."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            if i == len(lines):
                break
            raise RunDirError(f"{path}:{i}: not a JSON object: {exc}") from None
        if not isinstance(row, dict) or "step" not in row:
            raise RunDirError(f'{path}:{i}: a metrics row must be a JSON object with a "step" key')
        rows.append(row)
    return rows


@dataclass
class RunDir:
    """What was found in a run directory (paths are None / empty when absent)."""

    root: Path
    trajectory_files: list[Path] = field(default_factory=list)
    metrics: Path | None = None
    config: Path | None = None
    summary: Path | None = None
    samples: Path | None = None

    @property
    def kind(self) -> str:
        """`eval`, `rl`, `sft`, `rollouts` or `trajectories` (a bare file or folder), from what is there."""
        if self.samples is not None:
            return "eval"
        if any(f.parent.name == "rollouts" for f in self.trajectory_files):
            return "rl"
        if self.metrics is not None:
            return "rl" if self.trajectory_files else "sft"
        return "rollouts" if self.summary is not None else "trajectories"


def scan(path: str | Path) -> RunDir:
    """Find everything a report can show in `path` (a run directory or one trajectory file)."""
    p = Path(path)
    files = trajectory_files(p, required=False)
    if p.is_file():
        return RunDir(p.parent, files)

    def opt(name: str) -> Path | None:
        return p / name if (p / name).is_file() else None

    rd = RunDir(p, files, opt("metrics.jsonl"), opt("config.yaml"), opt("summary.json"), opt("samples.jsonl"))
    if not files and rd.metrics is None:
        raise RunDirError(f"nothing to show in {p}: no trajectories (trajectories/*.jsonl, rollouts/step_*.jsonl, "
                          "*.jsonl) and no metrics.jsonl")
    return rd
