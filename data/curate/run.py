"""`curate`: run a teacher over tasks through the episode loop, keep the good trajectories, write SFT JSONL + a report.

    report = curate(tasks, EngineTeacher(engine, samples_per_task=4), "runs/curate/gpt41", protocol=protocol,
                    pool=pool)
    # runs/curate/gpt41/sft.jsonl      the kept trajectories (message-level; SFT data for `codevl sft`)
    # runs/curate/gpt41/report.json    counts: episodes, passed, kept, why the rest was dropped, per task type
    # runs/curate/gpt41/episodes.jsonl every episode with its reward breakdown and curation verdict

Work goes in batches of tasks. After each batch its episodes are appended to `episodes.jsonl` (one write, flushed)
and then the batch's task ids to `done.txt`; a task counts as done only once its id is in `done.txt`. Restarting
with the same output folder skips done tasks and discards episodes of tasks that were not committed (an interrupted
batch), so nothing is run twice and nothing half-written is kept. The selection (dedup, per-task cap, balancing)
is recomputed from `episodes.jsonl` at the end of every run, from the JSON rows alone (no image is decoded).

A restart must use the same teacher, protocol, rules and reward set as the folder was started with (recorded in
`curation.json`): mixing them would mix data of different formats; a mismatch is an error saying what differs.
A restart with a task list that lacks tasks already done in the folder (another task file, a smaller `--limit`) is
an error too, since `sft.jsonl` would silently lose their kept rows; `merge=True` keeps them (the selection then
runs over every episode in the folder).

An episode that ended in `engine_error` or `sandbox_error` is a failure of the teacher or the sandbox, not an
answer: its task is not committed (it runs again on the next start), the failures are counted in the report with
the first error message, and a run stops after a first batch in which every episode failed this way (an
unreachable teacher), so that nothing is marked done that was never answered.

An interruption (Ctrl-C) keeps every committed batch and rebuilds `sft.jsonl` and `report.json` from them before
the KeyboardInterrupt goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data.curate.rules import DEFAULT_REWARD_SET, CurationRules, drop_reasons
from data.curate.selection import BalanceBy, select, type_of
from rollout.task import Task
from rollout.trajectory import ImageStore, Trajectory

logger = logging.getLogger(__name__)

EPISODES = "episodes.jsonl"
DONE = "done.txt"
SFT = "sft.jsonl"
REPORT = "report.json"
SETTINGS = "curation.json"
# Finish reasons that mean the teacher or the sandbox failed: no answer was given, the task must run again.
FAILED_FINISH = ("engine_error", "sandbox_error")


class CurationError(ValueError):
    """The output folder cannot be continued with these settings or tasks; the message says what differs."""


@dataclass
class CurationReport:
    """What curation kept and why it dropped the rest (also written to report.json)."""

    out_dir: str
    tasks_total: int = 0
    tasks_done_before: int = 0
    tasks_run: int = 0
    episodes: int = 0
    passed: int = 0
    kept: int = 0
    check_failures: Counter[str] = field(default_factory=Counter)  # every failed check (an episode may fail several)
    first_reason: Counter[str] = field(default_factory=Counter)  # the first failed check per dropped episode
    selection_drops: Counter[str] = field(default_factory=Counter)  # duplicate / max_per_task / balance
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> episodes / passed / kept
    tasks_failed: int = 0  # tasks left undone because an episode ended in engine_error / sandbox_error
    failed_episodes: Counter[str] = field(default_factory=Counter)  # finish reason -> episodes
    first_failure: str | None = None  # the first such episode's error message
    stopped_early: bool = False  # the first batch failed entirely: the run stopped instead of trying every task

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "tasks_total": self.tasks_total, "tasks_done_before": self.tasks_done_before,
                "tasks_run": self.tasks_run, "episodes": self.episodes, "passed_checks": self.passed,
                "kept": self.kept, "dropped_by_first_failed_check": dict(self.first_reason),
                "failed_checks": dict(self.check_failures), "dropped_by_selection": dict(self.selection_drops),
                "by_type": self.by_type, "tasks_failed": self.tasks_failed,
                "failed_episodes": dict(self.failed_episodes), "first_failure": self.first_failure,
                "stopped_early": self.stopped_early,
                "files": {"sft": SFT, "episodes": EPISODES, "report": REPORT}}

    def summary(self) -> str:
        lines = [f"curation in {self.out_dir}: {self.tasks_total} tasks ({self.tasks_done_before} done before, "
                 f"{self.tasks_run} run now), {self.episodes} episodes, {self.passed} passed the checks, "
                 f"{self.kept} kept -> {Path(self.out_dir) / SFT}"]
        if self.first_reason:
            lines.append("  dropped by check: " + ", ".join(f"{k} {v}" for k, v in self.first_reason.most_common()))
        if self.selection_drops:
            lines.append("  dropped by selection: " + ", ".join(f"{k} {v}" for k, v in self.selection_drops.most_common()))
        for typ, c in sorted(self.by_type.items()):
            lines.append(f"  {typ}: {c['episodes']} episodes, {c['passed']} passed, {c['kept']} kept")
        if self.tasks_failed:
            why = ", ".join(f"{k} {v}" for k, v in self.failed_episodes.most_common())
            stop = "; stopped after the first batch failed entirely" if self.stopped_early else ""
            lines.append(f"  NOT DONE: {self.tasks_failed} task(s) whose episodes failed ({why}{stop}); first error: "
                         f"{self.first_failure}; re-run the same command to retry them")
        return "\n".join(lines)


def _settings(teacher: Any, protocol: Any, rules: CurationRules, reward_set: Any) -> dict[str, Any]:
    return {"teacher": getattr(teacher, "name", type(teacher).__name__),
            "oracle_variants": list(getattr(teacher, "variants", []) or []),
            "samples_per_task": getattr(teacher, "samples_per_task", None), "protocol": protocol.name,
            "rules": rules.model_dump(), "reward_set": [c["key"] for c in reward_set.describe()]}


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS
    if not path.exists():
        path.write_text(json.dumps(settings, indent=1) + "\n")
        return
    before = json.loads(path.read_text())
    diff = [k for k in settings if before.get(k) != settings[k]]
    if diff:
        details = "; ".join(f"{k}: was {before.get(k)!r}, now {settings[k]!r}" for k in diff)
        raise CurationError(f"{out} was started with other settings ({details}); resume with the same settings or "
                            "use a new output folder")


def _committed(out: Path) -> set[str]:
    """Task ids committed in done.txt; episodes of other tasks (an interrupted batch) are removed from the file."""
    done_path, ep_path = out / DONE, out / EPISODES
    done = set(done_path.read_text().split()) if done_path.exists() else set()
    if ep_path.exists():
        keep, dropped = [], 0
        for line in ep_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if row["task"]["id"] in done:
                keep.append(line)
            else:
                dropped += 1
        if dropped:
            logger.warning("%s: discarding %d episode(s) of an interrupted batch (their tasks will run again)",
                           ep_path, dropped)
            ep_path.write_text("".join(x + "\n" for x in keep))
    return done


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _score(trajs: list[Trajectory], reward_set: Any, rules: CurationRules) -> None:
    reward_set.score(trajs, record=True)
    for t in trajs:
        reasons = drop_reasons(t, rules)
        check = t.metadata.get("oracle_check")
        if check:
            reasons.append("oracle_check")
        t.metadata["curation"] = {"passed": not reasons, "reasons": reasons}
        t.metadata.setdefault("task_type", t.task.metadata.get("task_type", t.task.source))


async def curate_async(tasks: Sequence[Task], teacher: Any, out_dir: str | Path, *, protocol: Any, pool: Any,
                       limits: Any = None, reward_set: Any = None, rules: CurationRules | None = None,
                       batch_size: int = 16, max_per_task: int | None = 1, balance_by: BalanceBy = "task_type",
                       max_per_type: int | None = None, balance: Literal["none", "equal"] = "none", seed: int = 0,
                       progress: bool = True, merge: bool = False) -> CurationReport:
    """See the module docstring."""
    from rewards import reward_set_from_config
    from rollout.loop import EpisodeLimits

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rules = rules or CurationRules()
    reward_set = reward_set or reward_set_from_config(DEFAULT_REWARD_SET, source="data.curate default")
    limits = limits or EpisodeLimits(max_turns=8)
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"task id {dup!r} appears more than once; curation tracks progress by task id")
    _check_settings(out, _settings(teacher, protocol, rules, reward_set))
    done = _committed(out)
    others = done - set(ids)
    if others and not merge:
        raise CurationError(
            f"{out} already holds {len(others)} curated task(s) that are not in this task list (e.g. "
            f"{sorted(others)[0]!r}): it was started with another task file or --limit, and rebuilding sft.jsonl from "
            "this list would drop their kept trajectories. Use a new --out, or pass --merge to keep them")
    todo = [t for t in tasks if t.id not in done]
    report = CurationReport(out_dir=str(out), tasks_total=len(tasks), tasks_done_before=len(tasks) - len(todo))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=report.tasks_done_before, desc=f"curate ({teacher.name})", unit="task")
    store = ImageStore(out)
    selection: dict[str, Any] = dict(max_per_task=max_per_task, balance_by=balance_by, max_per_type=max_per_type,
                                     balance=balance, seed=seed, task_ids=None if merge else set(ids))
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            trajs = await teacher.run(batch, protocol=protocol, pool=pool, limits=limits)
            failed = _failed_tasks(trajs, report)
            ok = [t for t in trajs if t.task.id not in failed]
            _score(ok, reward_set, rules)
            _append(out / EPISODES, "".join(json.dumps(t.to_dict(store)) + "\n" for t in ok))
            _append(out / DONE, "".join(t.id + "\n" for t in batch if t.id not in failed))
            report.tasks_run += len(batch) - len(failed)
            report.tasks_failed += len(failed)
            if bar is not None:
                bar.update(len(batch))
            if failed and len(failed) == len(batch) and report.tasks_run == 0:
                report.stopped_early = True
                report.tasks_failed += len(todo) - start - len(batch)
                break
    except (KeyboardInterrupt, asyncio.CancelledError):
        _finish(out, report, **selection)  # what was committed before the interruption is kept, and selected
        raise
    finally:
        if bar is not None:
            bar.close()
    _finish(out, report, **selection)
    return report


def _failed_tasks(trajs: Sequence[Trajectory], report: CurationReport) -> set[str]:
    """Ids of tasks with an episode that ended in engine_error / sandbox_error (counted in `report`)."""
    failed = set()
    for t in trajs:
        reason = getattr(t.finish_reason, "value", t.finish_reason)
        if reason in FAILED_FINISH:
            failed.add(t.task.id)
            report.failed_episodes[str(reason)] += 1
            if report.first_failure is None:
                report.first_failure = t.error or str(reason)
    return failed


def _finish(out: Path, report: CurationReport, *, task_ids: set[str] | None, **selection: Any) -> None:
    """Select from the committed episodes (of `task_ids`; all when None) and write sft.jsonl and report.json."""
    rows, lines = [], []
    if (out / EPISODES).exists():
        for line in (out / EPISODES).read_text().splitlines():
            row = json.loads(line)
            if task_ids is None or row["task"]["id"] in task_ids:
                rows.append(row)
                lines.append(line)
    passed = [i for i, r in enumerate(rows) if r["metadata"].get("curation", {}).get("passed")]
    chosen_local, dropped = select([rows[i] for i in passed], **selection)
    chosen = [passed[i] for i in chosen_local]
    report.episodes, report.passed, report.kept = len(rows), len(passed), len(chosen)
    by_type: dict[str, dict[str, int]] = {}
    balance_by = selection.get("balance_by", "task_type")
    for r in rows:
        typ = type_of(r, balance_by)
        c = by_type.setdefault(typ, {"episodes": 0, "passed": 0, "kept": 0})
        c["episodes"] += 1
        reasons = r["metadata"].get("curation", {}).get("reasons", [])
        if reasons:
            report.first_reason[reasons[0].split(":")[0]] += 1
            report.check_failures.update(x.split(":")[0] for x in reasons)
        else:
            c["passed"] += 1
    for i in chosen:
        by_type[type_of(rows[i], balance_by)]["kept"] += 1
    report.by_type = by_type
    report.selection_drops = Counter(dropped.values())
    tmp = out / (SFT + ".tmp")
    try:
        tmp.write_text("".join(lines[i] + "\n" for i in chosen))
        tmp.replace(out / SFT)
    finally:
        tmp.unlink(missing_ok=True)
    (out / REPORT).write_text(json.dumps(report.to_dict(), indent=1) + "\n")


def curate(tasks: Sequence[Task], teacher: Any, out_dir: str | Path, **kwargs: Any) -> CurationReport:
    """Synchronous `curate_async`."""
    return asyncio.run(curate_async(tasks, teacher, out_dir, **kwargs))
