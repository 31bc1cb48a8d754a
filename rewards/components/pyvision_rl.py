"""PyVision-RL tool bonus: `pyvision_tool_bonus` (docs/methods.md, fixed-tool peers: "acc + 0.1 per tool
call when correct").

    bonus = n_calls if correct else 0, n_calls = code steps that ran to the end (capped at `max_calls` if set)
                                                          (weight 0.1 in configs/rewards/pyvision_rl.yaml)
"""

from __future__ import annotations

from pydantic import Field

from rewards.component import RewardComponent
from rewards.context import ScoringContext
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.tool_use import tool_calls
from rollout.trajectory import Trajectory


class PyVisionBonusParams(ToolUseParams):
    max_calls: int | None = Field(None, ge=0, description="cap on the calls that earn the bonus (None: no cap)")


@register
class PyVisionToolBonus(RewardComponent):
    name = "pyvision_tool_bonus"
    scope = "episode"
    Params = PyVisionBonusParams
    source = "PyVision-RL: +0.1 per tool call when correct (docs/methods.md)"
    formula = "n_calls * 1[correct] (weight 0.1)"
    params: PyVisionBonusParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        n = tool_calls(ctx.tool_use(traj, p.ops_source), p.include_failed_steps)
        if p.max_calls is not None:
            n = min(n, p.max_calls)
        return float(n) if n and ctx.correct(traj) else 0.0
