"""Offline re-scoring: score saved trajectories under another reward set without generating anything.

    summary = rescore("runs/rl_x", load_reward_set("configs/rewards/ablations/codevision_no_penalties.yaml"))
    print(format_table(summary))

Inputs: `RUN_DIR/trajectories/*.jsonl` (eval runs), `RUN_DIR/rollouts/*.jsonl` (RL runs) or one `.jsonl` file. Each file is scored on its own
(groups by `group_id` within the file, as they were at rollout time) and written with the new breakdown in
`Trajectory.reward` to the output folder (default `RUN_DIR/rescored/<reward set name>/`), same file names, images
alongside. Scoring reads only what the trajectories recorded (answers, events, sandbox results and traces,
images), so a rescore under the set used at rollout time reproduces the recorded scores exactly (judge replies
come from the judge's cache when `cache_dir` is set). `codevl rescore` (train/commands/rescore.py) is the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rewards.breakdown import RewardBreakdown
from rewards.errors import RewardError
from rewards.reward_set import RewardSet
from rollout.trajectory import load_trajectories, save_trajectories


def trajectory_files(path: str | Path) -> list[Path]:
    """The JSONL files of a run: `path` itself if it is a .jsonl file, else `path/trajectories/*.jsonl` (eval runs,
    curation) or `path/rollouts/*.jsonl` (RL runs: one file per saved step)."""
    p = Path(path)
    if p.is_file():
        if p.suffix != ".jsonl":
            raise RewardError(f"{p} is not a .jsonl trajectory file")
        return [p]
    if not p.is_dir():
        raise RewardError(f"{p} is neither a run directory nor a .jsonl file")
    files = sorted((p / "trajectories").glob("*.jsonl")) or sorted((p / "rollouts").glob("*.jsonl"))
    if not files:
        raise RewardError(f"no trajectories in {p / 'trajectories'} or {p / 'rollouts'} (expected *.jsonl files there)")
    return files


def default_out_dir(path: str | Path, reward_set: RewardSet) -> Path:
    p = Path(path)
    run = p.parent.parent if p.is_file() and p.parent.name == "trajectories" else (p.parent if p.is_file() else p)
    return run / "rescored" / reward_set.name


@dataclass
class ComponentRow:
    """One line of the printed table."""

    key: str
    scope: str
    weight: float
    mean: float | None
    contribution: float
    na: int
    failed: int
    n: int


@dataclass
class RescoreSummary:
    reward_set: RewardSet
    files: list[Path]
    out_files: list[Path] = field(default_factory=list)
    breakdowns: list[RewardBreakdown] = field(default_factory=list)
    recorded_totals: list[float] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)  # per breakdown, the trajectory's task id

    def rows(self) -> list[ComponentRow]:
        rows = []
        n = len(self.breakdowns)
        for c in self.reward_set.components:
            scores = [b.components[c.key] for b in self.breakdowns]
            ok = [s.value for s in scores if s.status == "ok" and s.value is not None]
            rows.append(ComponentRow(c.key, c.scope, c.weight, sum(ok) / len(ok) if ok else None,
                                     sum(s.contribution for s in scores) / n if n else 0.0,
                                     sum(s.status == "n/a" for s in scores), sum(s.status == "failed" for s in scores), n))
        return rows

    def na_reasons(self) -> list[tuple[str, str, int, list[str]]]:
        """(component key, reason, trajectories, task ids) for every n/a reason, in component order."""
        out: dict[tuple[str, str], tuple[int, list[str]]] = {}
        tasks = self.task_ids
        for k, b in enumerate(self.breakdowns):
            for key, reason in b.na().items():
                n, ids = out.get((key, reason), (0, []))
                tid = tasks[k] if k < len(tasks) else None  # task ids are known when `rescore` built the summary
                out[(key, reason)] = (n + 1, ids if (tid is None or tid in ids) else [*ids, tid])
        order = {c.key: i for i, c in enumerate(self.reward_set.components)}
        return [(key, reason, n, ids) for (key, reason), (n, ids) in sorted(out.items(), key=lambda kv: order.get(kv[0][0], 0))]

    @property
    def total_mean(self) -> float | None:
        return sum(b.total for b in self.breakdowns) / len(self.breakdowns) if self.breakdowns else None


def rescore(path: str | Path, reward_set: RewardSet, out: str | Path | None = None, *,
            write: bool = True) -> RescoreSummary:
    """Re-score every trajectory file of `path` (see the module docstring)."""
    files = trajectory_files(path)
    out_dir = Path(out) if out is not None else default_out_dir(path, reward_set)
    if write and any(f.parent.resolve() == out_dir.resolve() for f in files):
        raise RewardError(f"output folder {out_dir} is where the inputs are; choose another --out")
    summary = RescoreSummary(reward_set, files)
    for f in files:
        trajs = load_trajectories(f)
        recorded = [t.reward.get("total") for t in trajs if t.reward and "total" in t.reward]
        summary.recorded_totals += [float(x) for x in recorded]  # type: ignore[arg-type]
        summary.breakdowns += reward_set.score(trajs, record=True)
        summary.task_ids += [t.task.id for t in trajs]
        if write:
            target = out_dir / f.name
            save_trajectories(target, trajs)
            summary.out_files.append(target)
    return summary


def _fmt(v: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.3f}"


def format_table(summary: RescoreSummary, *, source: Sequence[str] | None = None) -> str:
    """The per-component table: mean raw value, weight, mean contribution, n/a count, failed share; then one line
    per n/a reason naming the tasks that lack what the component needs."""
    rows = summary.rows()
    width = max([len("component"), *(len(r.key) for r in rows)]) + 2
    n = len(summary.breakdowns)
    lines = [f"reward set {summary.reward_set.name!r}"
             + (f" ({summary.reward_set.source})" if summary.reward_set.source else "")
             + f": {n} trajectories from {len(summary.files)} file(s)"]
    lines += list(source or [])
    lines.append(f"{'component':<{width}}{'scope':<9}{'weight':>8}{'mean':>8}{'contrib':>9}{'n/a':>6}{'failed':>8}")
    for r in rows:
        failed = f"{100.0 * r.failed / r.n:.1f}%" if r.n else "-"
        lines.append(f"{r.key:<{width}}{r.scope:<9}{r.weight:>8.3f}{_fmt(r.mean)}{_fmt(r.contribution, 9)}"
                     f"{r.na:>6}{failed:>8}")
    lines.append(f"{'total':<{width}}{'':<9}{'':>8}{'':>8}{_fmt(summary.total_mean, 9)}")
    for key, reason, count, ids in summary.na_reasons():
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        lines.append(f"n/a {key}: {count} trajectories ({reason}" + (f"; tasks: {shown})" if ids else ")"))
    if summary.recorded_totals:
        rec = sum(summary.recorded_totals) / len(summary.recorded_totals)
        lines.append(f"{'recorded total':<{width}}{'':<9}{'':>8}{'':>8}{_fmt(rec, 9)}"
                     f"   (mean of the {len(summary.recorded_totals)} totals recorded at rollout time)")
    if summary.out_files:
        lines.append(f"written to {summary.out_files[0].parent}/")
    return "\n".join(lines)
