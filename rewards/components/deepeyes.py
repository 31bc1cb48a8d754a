"""DeepEyes tool bonus: `deepeyes_tool_bonus` (docs/methods.md, fixed-tool peers).

DeepEyes: R = 0.8 acc + 0.2 format + 1.2 [tool used and correct]. Here a "tool use" is a code step that ran to
the end (or, with `include_failed_steps`, any step that ran):

    bonus = 1[correct and at least one tool call]          (weight 1.2 in configs/rewards/deepeyes.yaml)
"""

from __future__ import annotations

from rewards.component import RewardComponent
from rewards.context import ScoringContext
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.tool_use import tool_calls
from rollout.trajectory import Trajectory


@register
class DeepEyesToolBonus(RewardComponent):
    name = "deepeyes_tool_bonus"
    scope = "episode"
    Params = ToolUseParams
    source = "DeepEyes: 1.2 [tool used and correct] (docs/methods.md)"
    formula = "1[correct and >= 1 tool call] (weight 1.2)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        if tool_calls(ctx.tool_use(traj, p.ops_source), p.include_failed_steps) == 0:
            return 0.0
        return 1.0 if ctx.correct(traj) else 0.0
