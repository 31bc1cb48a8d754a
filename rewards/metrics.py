"""Batch metrics for logging: `reward/*` from breakdowns, `faithfulness/*` and `tools/*` from trajectories.

`reward_metrics(breakdowns)`:

    reward/total/mean, reward/episode/mean, reward/steps/mean (per trajectory: sum of its step rewards),
    reward/steps/per_step_mean (over all code steps)
    reward/<key>/mean        mean raw value over trajectories where the component applied and did not fail
                             (step components: their reduced value, sum or mean of the steps), for every
                             component whatever its weight
    reward/<key>/step_mean   step components: mean raw value over all their steps
    reward/<key>/contribution_mean   mean weighted contribution to the total
    reward/<key>/failed      fraction of trajectories where it failed (judge calls)
    reward/<key>/na          fraction where it did not apply
    reward/<key>/na_count    how many trajectories it did not apply to (n/a is counted, never scored 0)

`batch_metrics(trajectories)` adds those of the recorded breakdowns (`Trajectory.reward`), the CodeV
faithfulness metrics (`rewards.faithfulness`, correctness taken from the recorded accuracy component when there
is one) and tool-use monitoring (`tools/calls_mean`, `tools/any_call_rate`, `tools/failed_call_rate`: the
tool-use collapse docs/methods.md, "Pitfalls" warns about shows here first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewards.breakdown import RewardBreakdown
from rewards.context import ScoringContext
from rewards.faithfulness import FaithfulnessParams, evaluate_faithfulness
from rollout.trajectory import Trajectory
from sandbox.result import ExecStatus

ACCURACY_COMPONENTS = ("answer_accuracy", "codevision_code_accuracy", "deepeyes_accuracy", "pixel_reasoner_accuracy")
DEFAULT_FAITHFULNESS = FaithfulnessParams()


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def reward_metrics(breakdowns: Sequence[RewardBreakdown | Mapping[str, Any]]) -> dict[str, float]:
    """Aggregate breakdowns into `reward/*` metrics (see the module docstring)."""
    bs = [b if isinstance(b, RewardBreakdown) else RewardBreakdown.from_dict(dict(b)) for b in breakdowns]
    if not bs:
        return {}
    m: dict[str, float] = {
        "reward/total/mean": sum(b.total for b in bs) / len(bs),
        "reward/episode/mean": sum(b.episode for b in bs) / len(bs),
        "reward/steps/mean": sum(sum(b.steps) for b in bs) / len(bs),
    }
    all_steps = [s for b in bs for s in b.steps]
    if all_steps:
        m["reward/steps/per_step_mean"] = sum(all_steps) / len(all_steps)
    keys: list[str] = []
    for b in bs:
        keys += [k for k in b.components if k not in keys]
    for key in keys:
        scores = [b.components[key] for b in bs if key in b.components]
        ok = [c.value for c in scores if c.status == "ok" and c.value is not None]
        if (mean := _mean(ok)) is not None:
            m[f"reward/{key}/mean"] = mean
        steps = [v for c in scores if c.status == "ok" and c.steps for v in c.steps if v is not None]
        if scores and scores[0].scope == "step" and steps:
            m[f"reward/{key}/step_mean"] = sum(steps) / len(steps)
        m[f"reward/{key}/contribution_mean"] = sum(c.contribution for c in scores) / len(scores)
        m[f"reward/{key}/failed"] = sum(c.status == "failed" for c in scores) / len(scores)
        na = sum(c.status == "n/a" for c in scores)
        m[f"reward/{key}/na"] = na / len(scores)
        m[f"reward/{key}/na_count"] = float(na)
    return m


def recorded_correctness(traj: Trajectory) -> bool | None:
    """Correctness as recorded by the accuracy component of the trajectory's breakdown (None if absent)."""
    if not traj.reward:
        return None
    for comp in traj.reward.get("components", {}).values():
        if comp.get("name") in ACCURACY_COMPONENTS and comp.get("status") == "ok":
            correct = (comp.get("info") or {}).get("correct")
            if isinstance(correct, bool):
                return correct
    return None


def tool_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Tool-call monitoring: mean code steps per trajectory, share with any step, share of failed calls."""
    if not trajectories:
        return {}
    calls = [len(t.steps) for t in trajectories]
    ran = [s for t in trajectories for s in t.steps if s.result is not None]
    m = {"tools/calls_mean": sum(calls) / len(calls), "tools/any_call_rate": sum(c > 0 for c in calls) / len(calls)}
    if ran:
        m["tools/failed_call_rate"] = sum(s.result.status is not ExecStatus.OK for s in ran) / len(ran)  # type: ignore[union-attr]
    return m


def batch_metrics(trajectories: Sequence[Trajectory], *,
                  faithfulness: FaithfulnessParams | None = DEFAULT_FAITHFULNESS,
                  ctx: ScoringContext | None = None) -> dict[str, float]:
    """`reward/*` (from recorded breakdowns), `faithfulness/*` (rules by default; None to skip) and `tools/*`."""
    m = reward_metrics([t.reward for t in trajectories if t.reward])
    if faithfulness is not None:
        ctx = ctx or ScoringContext()
        correct: list[bool | None] = []
        for t in trajectories:
            c = recorded_correctness(t)
            if c is None:
                try:
                    c = ctx.correct(t)
                except Exception:  # noqa: BLE001 - unknown correctness is left out of the table
                    c = None
            correct.append(c)
        m.update(evaluate_faithfulness(trajectories, faithfulness, correct=correct, ctx=ctx).to_metrics())
    m.update(tool_metrics(trajectories))
    return m
