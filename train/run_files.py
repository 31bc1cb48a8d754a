"""Files every training run keeps in its output directory: the metrics log, and checks on what is already there.

- `metrics.jsonl`: one JSON object per logged step, always with `"step"`; written by the main process only and
  flushed line by line, so a killed run keeps every step it logged (the report and plots read it).
- `config.yaml`: the resolved config (`train.config.save_resolved`). A run directory that already holds a
  different config is refused, so a resume never continues someone else's run with other settings.
- checkpoints `checkpoint-<step>/`: the newest *complete* one is found by its last-written file, so a run killed
  while saving resumes from the checkpoint before, which stays intact.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

METRICS_FILE = "metrics.jsonl"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class RunDirError(ValueError):
    """The output directory cannot be used as asked (another run's config, a resume with nothing to resume)."""


class MetricsLog:
    """Append-only JSONL of per-step metrics (non-finite numbers become null, JSON has no NaN)."""

    def __init__(self, run_dir: str | Path, *, enabled: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row: dict[str, Any] = {"step": int(step)}
        for k, v in values.items():
            if isinstance(v, bool) or v is None or isinstance(v, str):
                row[k] = v
            elif isinstance(v, (int, float)):
                row[k] = float(v) if math.isfinite(float(v)) else None
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of a run's metrics.jsonl (a torn last line from a kill is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def latest_checkpoint(run_dir: str | Path, complete_marker: str) -> Path | None:
    """The `checkpoint-<step>` folder with the highest step that holds `complete_marker` (written last)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = []
    for p in run_dir.iterdir():
        m = _CHECKPOINT.match(p.name)
        if m and p.is_dir() and (p / complete_marker).exists():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def check_same_config(run_dir: str | Path, resolved: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> None:
    """Refuse a run directory whose saved config differs from `resolved` (keys in `ignore`, dotted, excepted)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return
    diffs = [k for k in sorted(set(_flat(saved)) | set(_flat(resolved)))
             if not any(k == i or k.startswith(i + ".") for i in ignore) and _flat(saved).get(k) != _flat(resolved).get(k)]
    if diffs:
        shown = ", ".join(f"{k}: {_flat(saved).get(k)!r} -> {_flat(resolved).get(k)!r}" for k in diffs[:5])
        raise RunDirError(f"{path} holds another run's config ({shown}{' ...' if len(diffs) > 5 else ''}); use a new "
                          "run.output_dir, or delete that directory to start over")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out
