"""One evaluated episode as a plain JSON record (`samples.jsonl`), and the append-only file that makes a run resumable.

A record holds what evaluation tables need without loading the trajectory (whose images can be large): the task's
identity and grouping keys, the prediction and whether it is right, tool use, faithfulness labels, reward and
timing, plus a reference to the full trajectory (`trajectory`: file relative to the run directory, and id).

Resume rule: a sample is finished when its record is in `samples.jsonl` and it did not fail (an engine or sandbox
failure is not an answer, so it is run again); a torn last line left by a kill is dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewards.faithfulness import OutputFaithfulness, SampleFaithfulness
from rewards.tool_use import StepToolUse
from rollout.task import Task
from rollout.trajectory import FinishReason, Trajectory

FAILED_FINISH = (FinishReason.ENGINE_ERROR.value, FinishReason.SANDBOX_ERROR.value)

# Metadata keys that name a task's category, most specific first (V* and HRBench: category; VLMsAreBlind: task;
# OCRBench: type; generators and MVToolBench: task_type; anything generated: generator).
CATEGORY_KEYS = ("category", "task", "type", "task_type", "generator")


def task_category(task: Task) -> str | None:
    """The task's category for per-category accuracy (first of CATEGORY_KEYS in its metadata), or None."""
    for key in CATEGORY_KEYS:
        value = task.metadata.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def task_transform(task: Task) -> str | None:
    """The rotation / flip applied to the task's image (`metadata.transform`, "none" for originals), or None."""
    value = task.metadata.get("transform")
    return None if value in (None, "") else str(value)


def sample_key(task_id: str, sample_index: int) -> str:
    """The key of one episode of one task: what resume and `eval compare` match on."""
    return f"{task_id}#{sample_index}"


def make_record(traj: Trajectory, *, correct: bool | None, match: str | None, score: float | None,
                tool_use: list[StepToolUse], faithfulness: SampleFaithfulness | None, trajectory_file: str,
                task_position: int) -> dict[str, Any]:
    """The JSON record of one finished episode (see the module docstring)."""
    task = traj.task
    finish = traj.finish_reason.value if traj.finish_reason else None
    ops = Counter(op.op for use in tool_use for op in use.ops)
    statuses = [s.result.status.value if s.result is not None else f"not_run:{s.skipped}" for s in traj.steps]
    outputs = sum(len(s.result.images) for s in traj.steps if s.result is not None)
    meta = traj.metadata
    return {
        "key": sample_key(task.id, traj.sample_index),
        "task_id": task.id,
        "sample_index": traj.sample_index,
        "position": task_position,
        "trajectory": {"file": trajectory_file, "id": traj.id},
        "source": task.source,
        "category": task_category(task),
        "transform": task_transform(task),
        "question": task.question,
        "answer": task.answer,
        "answer_type": task.answer_type,
        "prediction": traj.answer,
        "last_message": last[-4000:] if (last := _last_message(traj)) is not None else None,
        "correct": correct,
        "match": match,
        "score": score,
        "finish_reason": finish,
        "failed": finish in FAILED_FINISH,
        "error": traj.error,
        "steps": len(traj.steps),
        "step_status": statuses,
        "ops": dict(sorted(ops.items())),
        "images_shown": outputs,
        "turns": sum(1 for t in traj.turns if t.role == "assistant"),
        "sampled_tokens": traj.num_sampled_tokens,
        "response_chars": sum(len(t.text) for t in traj.turns if t.role == "assistant"),
        "reward": (traj.reward or {}).get("total"),
        "reward_components": {k: c.get("value") for k, c in ((traj.reward or {}).get("components") or {}).items()},
        "faithfulness": None if faithfulness is None else {
            "applicable": faithfulness.applicable,
            "outputs": [o.to_dict() for o in faithfulness.outputs]},
        "timing": {k: round(float(meta[k]), 4) for k in ("wall_s", "generate_s", "sandbox_s") if k in meta},
    }


def _last_message(traj: Trajectory) -> str | None:
    texts = [t.text for t in traj.turns if t.role == "assistant"]
    return texts[-1] if texts else None


def record_faithfulness(record: dict[str, Any]) -> SampleFaithfulness | None:
    """The record's faithfulness labels back as `rewards.faithfulness.SampleFaithfulness` (None if not recorded),
    so that the 2x2 table is computed by the rewards package's own rule."""
    f = record.get("faithfulness")
    if f is None:
        return None
    return SampleFaithfulness(record["trajectory"]["id"], bool(f["applicable"]),
                              [OutputFaithfulness(**o) for o in f["outputs"]], correct=record.get("correct"))


def read_records(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of `samples.jsonl` (later records of the same key replace earlier ones). A torn last line (a
    kill during the write) is dropped, and with `repair=True` cut from the file; any other bad line is an error
    naming file:line."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    out: dict[str, dict[str, Any]] = {}
    good_end = 0
    for i, line in enumerate(lines, 1):
        if not line.strip():
            good_end += len(line) + 1
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "key" not in rec:
                raise ValueError("not a sample record (no 'key')")
        except ValueError as exc:
            if i == len(lines) and not raw.endswith(b"\n"):  # torn last line
                break
            raise ValueError(f"{path}:{i}: not a valid sample record: {exc}") from None
        out[rec["key"]] = rec
        good_end += len(line) + 1
    if repair and good_end < len(raw):
        with path.open("r+b") as f:
            f.truncate(good_end)
    return list(out.values())


def finished_keys(records: Iterable[dict[str, Any]]) -> set[str]:
    """Keys of samples that need not run again (recorded and not failed)."""
    return {r["key"] for r in records if not r.get("failed")}


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records, one JSON line each, flushed to disk before returning (what resume relies on)."""
    import os

    with Path(path).open("a") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
