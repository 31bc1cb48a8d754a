"""Code execution: `exec_success` and `exec_error` (step scope).

    exec_success_t = 1 if block t ran to the end (status ok), else 0          (reduce: mean -> success rate)
    exec_error_t   = 1 if block t ran and ended in one of `statuses`, else 0  (reduce: sum)

CodeVision's released tool returns -0.05 for a failed call (verl/tools/code_image_tool.py `execute`), but the agent loop
discards that value (verl/experimental/agent_loop/tool_agent_loop.py `_call_tool`: `tool_execution_response, _, _
= await tool.execute(...)`) and trains on one reward at the last token, so CodeVision never trains on a
per-failed-call penalty: the shipped sets log `exec_error` at weight 0. Give it a negative weight to try one.

A block that was never run (the episode hit a limit first, or the sandbox itself failed: `Step.result is None`)
is not a code call: it is neither a success nor a failure (n/a for that step, left out of the mean).
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
    source = ("code execution success rate (the released CodeVision code logs it as R_exec, "
              "agent_loop.py::_compute_tool_reward_for_sample)")
    formula = "s_t = 1[block t ran to the end]; mean over steps"
    params: ExecSuccessParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float | None]:
        return [None if s.result is None else (1.0 if s.result.status is ExecStatus.OK else 0.0) for s in traj.steps]


@register
class ExecError(RewardComponent):
    name = "exec_error"
    scope = "step"
    Params = ExecErrorParams
    source = "failed code calls; CodeVision's tool computes -0.05 each but tool_agent_loop.py::_call_tool discards it"
    formula = "e_t = 1[block t failed]; sum over executed steps (logged at weight 0 in the shipped sets)"
    params: ExecErrorParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float | None]:
        bad = set(self.params.statuses)
        return [None if s.result is None else (1.0 if s.result.status.value in bad else 0.0) for s in traj.steps]
