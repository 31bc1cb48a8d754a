"""PyVision-RL tool bonus as released (agents-x-project/PyVision-RL): each executed tool call returns
`tool_using_cumulative_reward_per_turn` (0.1) whether it succeeded or raised
(verl/workers/agent/envs/agents_x/safe_persis_python_exe_tool_w_image_hint.py `step`: the reward is returned on the
success and on the error path), and the accumulated env reward is added only when the answer is right
(verl/workers/reward_manager/naive.py `__call__`: `if score['is_answer_right']: reward_tensor[i] +=
env_reward_tensor[i]`):

    bonus = n_calls if correct else 0, n_calls = executed code blocks, failed ones included
                                                          (weight 0.1 in configs/rewards/pyvision_rl.yaml)

A block never executed (cut by the turn limit) is not a call.
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
    include_failed_steps: bool = Field(True, description="a call that raised earns the bonus too (released)")
    max_calls: int | None = Field(None, ge=0, description="cap on the calls that earn the bonus (None: no cap)")


@register
class PyVisionToolBonus(RewardComponent):
    """PyVision-RL: +0.1 per executed tool call (failed ones included), paid only when the answer is right."""

    name = "pyvision_tool_bonus"
    scope = "episode"
    Params = PyVisionBonusParams
    source = ("PyVision-RL released code: safe_persis_python_exe_tool_w_image_hint.py::step (0.1 per call, errors "
              "included), reward_manager/naive.py::__call__ (added when the answer is right)")
    formula = "n_calls * 1[correct], n_calls = executed code blocks incl. failed ones (weight 0.1)"
    params: PyVisionBonusParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        n = tool_calls(ctx.tool_use(traj, p.ops_source), p.include_failed_steps)
        if p.max_calls is not None:
            n = min(n, p.max_calls)
        return float(n) if n and ctx.correct(traj) else 0.0
