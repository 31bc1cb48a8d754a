"""Pixel-Reasoner's curiosity bonus and call-count penalty (docs/methods.md, fixed-tool peers: "curiosity
bonus when the group rarely uses tools, -0.05 per extra call").

    RaPR        = fraction of the group's rollouts that used a tool (at least one tool call)
    curiosity_i = max(H - RaPR, 0) * 1[rollout i used a tool]        (group scope; H = `rate_threshold`)
    extra_i     = max(n_calls_i - N, 0)                              (episode; N = `free_calls`; weight -0.05)

Pixel-Reasoner writes r' = r + alpha * r_curiosity + beta * r_penalty with r_penalty = min(N - n, 0); here the
penalty is the positive count with a negative weight (the package's sign convention). docs/methods.md gives only
beta = 0.05; H = 0.3, N = 1 and alpha = 0.5 (the defaults here and in `configs/rewards/pixel_reasoner.yaml`) are
the Pixel-Reasoner paper's values as we recall them, not checked against its code: verify before comparing runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.tool_use import tool_calls
from rollout.trajectory import Trajectory


class CuriosityParams(ToolUseParams):
    rate_threshold: float = Field(0.3, ge=0.0, le=1.0, description="H: bonus while the group's tool rate is below")


@register
class PixelReasonerCuriosity(RewardComponent):
    name = "pixel_reasoner_curiosity"
    scope = "group"
    Params = CuriosityParams
    source = "Pixel-Reasoner curiosity bonus (docs/methods.md)"
    formula = "max(H - RaPR, 0) * 1[used a tool], RaPR = group's tool-use rate (H = 0.3; weight 0.5)"
    params: CuriosityParams

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> list[ComponentValue]:
        p = self.params
        used = [tool_calls(ctx.tool_use(t, p.ops_source), p.include_failed_steps) > 0 for t in trajs]
        rate = sum(used) / len(used)
        bonus = max(p.rate_threshold - rate, 0.0)
        return [ComponentValue(value=bonus if u else 0.0, info={"group_tool_rate": rate}) for u in used]


class ExtraCallsParams(ToolUseParams):
    free_calls: int = Field(1, ge=0, description="N: calls without penalty")


@register
class PixelReasonerExtraCalls(RewardComponent):
    name = "pixel_reasoner_extra_calls"
    scope = "episode"
    Params = ExtraCallsParams
    source = "Pixel-Reasoner: -0.05 per call beyond N (docs/methods.md)"
    formula = "max(n_calls - N, 0) (N = 1; weight -0.05)"
    params: ExtraCallsParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        return float(max(tool_calls(ctx.tool_use(traj, p.ops_source), p.include_failed_steps) - p.free_calls, 0))
