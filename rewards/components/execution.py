"""Code execution: `exec_success` and `exec_error` (step scope; docs/methods.md, CodeVision code: "each
failed tool call also gets a -0.05 step reward").

    exec_success_t = 1 if block t ran to the end (status ok), else 0          (reduce: mean -> success rate)
    exec_error_t   = 1 if block t ran and ended in one of `statuses`, else 0  (reduce: sum; weight -0.05)

A block that was never run (the episode hit a limit first, or the sandbox itself failed) is neither a success
nor a failed call.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewards.component import RewardComponent
from rewards.context import ScoringContext
from rewards.params import ComponentParams
from rewards.registry import register
from rollout.trajectory import Trajectory
from sandbox.result import ExecStatus

FAILED_STATUSES = ("error", "timeout", "memory", "output_limit", "crashed", "killed")


class ExecSuccessParams(ComponentParams):
    reduce: Literal["sum", "mean"] = "mean"


class ExecErrorParams(ComponentParams):
    statuses: list[Literal["error", "timeout", "memory", "output_limit", "crashed", "killed"]] = Field(
        default_factory=lambda: list(FAILED_STATUSES))  # type: ignore[arg-type]
    reduce: Literal["sum", "mean"] = "sum"


@register
class ExecSuccess(RewardComponent):
    name = "exec_success"
    scope = "step"
    Params = ExecSuccessParams
    default_reduce = "mean"
    source = "code execution success (docs/architecture.md rewards)"
    formula = "s_t = 1[block t ran to the end]; mean over steps"
    params: ExecSuccessParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float]:
        return [1.0 if (s.result is not None and s.result.status is ExecStatus.OK) else 0.0 for s in traj.steps]


@register
class ExecError(RewardComponent):
    name = "exec_error"
    scope = "step"
    Params = ExecErrorParams
    source = "CodeVision released code: -0.05 per failed tool call (docs/methods.md)"
    formula = "e_t = 1[block t failed]; sum over steps (weight -0.05)"
    params: ExecErrorParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float]:
        bad = set(self.params.statuses)
        return [1.0 if (s.result is not None and s.result.status.value in bad) else 0.0 for s in traj.steps]
