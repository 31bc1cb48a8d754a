"""Pixel-Reasoner's reward shaping as released (TIGER-AI-Lab/Pixel-Reasoner,
curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py, the group loop after
`convenient_get_batch_rewards_from_queries`), for image inputs:

    RaPR         = fraction of the group's rollouts with at least one tool call
    r_i          = 1[correct], set to 0 when correct but the last visual operation failed and the model did not
                   recover (`final_error_flags`)
    curiosity_i  = max(0.3 - RaPR, 0) / 2 / RaPR * 0.25     if rollout i made a tool call, else 0
    penalty_i    = -0.05 * (ncall_i - 1)                    if rollout i made a tool call, else 0
    R_i          = r_i + 1.0 * (curiosity_i + penalty_i)    (`bonus = discount * (curiosity + penalty)`, discount 1)

    pixel_reasoner_accuracy     r_i                                           (weight 1.0)
    pixel_reasoner_curiosity    curiosity_i                                   (weight 1.0)
    pixel_reasoner_extra_calls  max(ncall_i - 1, 0)                           (weight -0.05)

`ncall` counts every tool call the model requested: the released loop increments `num_toolcalls` when a turn
ends with a tool call, also on the turn where it then force-terminates (more than 3 calls, too many images, too
many tokens) without executing it; `count_unexecuted: false` counts executed calls only. Video inputs use 1.5
instead of 2 as the divisor (`divisor`). The released code indexes `final_error_flags` with the position inside
the group (a bug); here each rollout's own last call decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.components.accuracy import AnswerAccuracy
from rewards.context import ScoringContext
from rewards.params import ComponentParams
from rewards.registry import register
from rollout.trajectory import Trajectory
from sandbox.result import ExecStatus


class CallCountParams(ComponentParams):
    count_unexecuted: bool = Field(True, description="count tool calls the model requested but that were never "
                                                     "executed (released: num_toolcalls counts them)")


def n_calls(traj: Trajectory, count_unexecuted: bool) -> int:
    """Tool calls of a rollout: every code block the model wrote, or only the executed ones."""
    return len(traj.steps) if count_unexecuted else sum(1 for s in traj.steps if s.result is not None)


def last_call_failed(traj: Trajectory) -> bool:
    """The last executed tool call failed and no later call followed it (released `final_error_flags`)."""
    executed = [s.result for s in traj.steps if s.result is not None]
    return bool(executed) and executed[-1].status is not ExecStatus.OK


@register
class PixelReasonerAccuracy(AnswerAccuracy):
    """Pixel-Reasoner's r: 1[correct], zeroed when the last visual operation failed unrecovered
    (experience_maker.py: `if this_r > 0.5 and final_is_error_vo: this_r = 0.0`)."""

    name = "pixel_reasoner_accuracy"
    source = "Pixel-Reasoner released code: experience_maker.py (this_r, final_error_flags)"
    formula = "r = 1[correct], 0 when the last executed tool call failed and the model answered without retrying"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        m = self.check(traj, ctx)
        unrecovered = last_call_failed(traj)
        value = 0.0 if (m.correct and unrecovered) else m.score
        return ComponentValue(value=value, info={"method": m.method, "correct": m.correct,
                                                 "last_call_failed": unrecovered})


class CuriosityParams(CallCountParams):
    rate_threshold: float = Field(0.3, ge=0.0, le=1.0, description="H: bonus while the group's tool rate RaPR < H")
    divisor: float = Field(2.0, gt=0.0, description="2.0 for images, 1.5 for video (released)")
    scale: float = Field(0.25, ge=0.0, description="'the maximum curiosity is 0.25' (released)")


@register
class PixelReasonerCuriosity(RewardComponent):
    """Pixel-Reasoner curiosity bonus over the group (experience_maker.py: `curiosity = max(0.3 - rapr, 0.0) / 2.0;
    curiosity = curiosity / rapr * 0.25` for a rollout with ncall > 0)."""

    name = "pixel_reasoner_curiosity"
    scope = "group"
    Params = CuriosityParams
    source = "Pixel-Reasoner released code: experience_maker.py (curiosity bonus, rapr)"
    formula = "max(H - RaPR, 0) / 2 / RaPR * 0.25 if the rollout made a tool call (H = 0.3; weight 1.0)"
    params: CuriosityParams

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> list[ComponentValue]:
        p = self.params
        used = [n_calls(t, p.count_unexecuted) > 0 for t in trajs]
        rate = sum(used) / len(used)
        bonus = max(p.rate_threshold - rate, 0.0) / p.divisor / rate * p.scale if rate > 0 else 0.0
        return [ComponentValue(value=bonus if u else 0.0, info={"group_tool_rate": rate}) for u in used]


class ExtraCallsParams(CallCountParams):
    free_calls: int = Field(1, ge=0, description="N: calls without penalty")


@register
class PixelReasonerExtraCalls(RewardComponent):
    """Pixel-Reasoner call penalty (experience_maker.py: `penalty = -0.05 * (ncall - 1)` for ncall > 0)."""

    name = "pixel_reasoner_extra_calls"
    scope = "episode"
    Params = ExtraCallsParams
    source = "Pixel-Reasoner released code: experience_maker.py (penalty = -0.05 * (ncall - 1))"
    formula = "max(n_calls - 1, 0) (weight -0.05)"
    params: ExtraCallsParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        return float(max(n_calls(traj, p.count_unexecuted) - p.free_calls, 0))
