"""CodeVision reward, paper variant (docs/methods.md, "Reward (paper)"):

    R = r_acc + r_fmt + b1 * sum_t R_strategy(a_t) - b2 * P_cost        (b1 = 1.0, b2 = 0.5; format weight 0.1)

Strategy (`codevision_must_use` per step, `codevision_exact_set`, `codevision_suggested_tool` over the group)
and the three 0/1 penalties (`codevision_turn_penalty`, `codevision_poor_reasoning`,
`codevision_inappropriate_tool`, weight -0.5 each). Which ops were used comes from `rewards.tool_use` (trace,
AST fallback); a use counts when its block ran to the end ("used correctly"), unless `include_failed_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.required_ops import core_ops_used, max_crop_iou, must_use_credits, orientation_ops_used, required_set
from rewards.tool_use import StepToolUse, tool_calls, used_ops
from rollout.trajectory import Trajectory
from sandbox.result import ORIENTATION_OPS


@register
class CodeVisionMustUse(RewardComponent):
    name = "codevision_must_use"
    scope = "step"
    Params = ToolUseParams
    source = "CodeVision paper: must-use tools, crop IoU improvement (docs/methods.md)"
    formula = ("m_t = sum over ops first used correctly at t of 1/|S_req| (ops of S_req except crop) "
               "+ (IoU_t - max IoU before t)^+ / |S_req| if crop in S_req")
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        uses = ctx.tool_use(traj, p.ops_source)
        credits = must_use_credits(uses, traj.task, ctx.sizes(traj), p.include_failed_steps)
        info = {}
        if "crop" in required_set(traj.task) and not traj.task.evidence:
            info["note"] = "crop is required but the task has no evidence box: crop earns no credit"
        return ComponentValue(steps=credits, info=info)  # type: ignore[arg-type]


class ExactSetParams(ToolUseParams):
    require_no_wasted_steps: bool = Field(True, description="also require every code step to use an op of S_req")


@register
class CodeVisionExactSet(RewardComponent):
    name = "codevision_exact_set"
    scope = "episode"
    Params = ExactSetParams
    source = "CodeVision paper: bonus when exactly S_req is executed, no wasted steps (docs/methods.md)"
    formula = "1[core ops used == S_req and every code step ran to the end using an op of S_req]"
    params: ExactSetParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        uses = ctx.tool_use(traj, p.ops_source)
        req = required_set(traj.task)
        if core_ops_used(uses, p.include_failed_steps) != req:
            return 0.0
        if p.require_no_wasted_steps and any(not (s.ok and (s.op_names() & req)) for s in uses):
            return 0.0
        return 1.0


class SuggestedToolParams(ToolUseParams):
    tools: list[str] | None = Field(None, description="ops that count as the suggested tool (None: any code step)")
    metadata_key: str = Field("suggested_ops", description="Task.metadata key that overrides `tools` per task")


def uses_tool(uses: Sequence[StepToolUse], tools: list[str] | None, include_failed: bool) -> bool:
    """Whether a rollout used the suggested tool: any of `tools`, or with None any counted code step."""
    if tools is None:
        return tool_calls(uses, include_failed) > 0
    return bool(used_ops(uses, include_failed) & set(tools))


def necessity(used: Sequence[bool], correct: Sequence[bool]) -> float:
    """r_nec = max(0, acc(rollouts that used the tool) - acc(rollouts that did not)); 0 when either side is
    empty (nothing to compare)."""
    yes = [c for u, c in zip(used, correct, strict=True) if u]
    no = [c for u, c in zip(used, correct, strict=True) if not u]
    if not yes or not no:
        return 0.0
    return max(0.0, sum(yes) / len(yes) - sum(no) / len(no))


@register
class CodeVisionSuggestedTool(RewardComponent):
    name = "codevision_suggested_tool"
    scope = "group"
    Params = SuggestedToolParams
    source = "CodeVision paper: suggested-tool necessity over the group of rollouts (docs/methods.md)"
    formula = "r_nec = max(0, acc(group rollouts using the tool) - acc(those not)), paid to the rollouts that used it"
    params: SuggestedToolParams

    def tools_for(self, traj: Trajectory) -> list[str] | None:
        meta = traj.task.metadata.get(self.params.metadata_key)
        return list(meta) if isinstance(meta, (list, tuple)) else self.params.tools

    def eligible(self, traj: Trajectory, ctx: ScoringContext) -> bool:
        """Whether a rollout may receive the bonus (the code variant gates it)."""
        return True

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> list[ComponentValue]:
        p = self.params
        used = [uses_tool(ctx.tool_use(t, p.ops_source), self.tools_for(t), p.include_failed_steps) for t in trajs]
        correct = [ctx.correct(t) for t in trajs]
        r = necessity(used, correct)
        return [ComponentValue(value=r if (u and self.eligible(t, ctx)) else 0.0, info={"r_nec": r, "used_tool": u})
                for t, u in zip(trajs, used, strict=True)]


class TurnPenaltyParams(ToolUseParams):
    extra_turns: int = Field(1, ge=0, description="tool turns allowed beyond |S_req|")


@register
class CodeVisionTurnPenalty(RewardComponent):
    name = "codevision_turn_penalty"
    scope = "episode"
    Params = TurnPenaltyParams
    source = "CodeVision paper: more tool turns than |S_req| + 1 (docs/methods.md)"
    formula = "1[number of code steps > |S_req| + 1] (weight -0.5)"
    params: TurnPenaltyParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return 1.0 if len(traj.steps) > len(required_set(traj.task)) + self.params.extra_turns else 0.0


class PoorReasoningParams(ToolUseParams):
    iou_threshold: float = Field(0.1, ge=0.0, le=1.0)


@register
class CodeVisionPoorReasoning(RewardComponent):
    name = "codevision_poor_reasoning"
    scope = "episode"
    Params = PoorReasoningParams
    source = "CodeVision paper: correct answer with crop IoU < 0.1 (docs/methods.md)"
    formula = "1[correct and crop in S_req and max crop IoU < 0.1] (weight -0.5)"
    params: PoorReasoningParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        if "crop" not in required_set(traj.task) or not ctx.correct(traj):
            return 0.0
        iou = max_crop_iou(ctx.tool_use(traj, p.ops_source), traj.task, ctx.sizes(traj), p.include_failed_steps)
        return 1.0 if iou < p.iou_threshold else 0.0


@register
class CodeVisionInappropriateTool(RewardComponent):
    name = "codevision_inappropriate_tool"
    scope = "episode"
    Params = ToolUseParams
    source = "CodeVision paper: an orientation tool used when none was needed (docs/methods.md)"
    formula = "1[an orientation op used and S_req has no orientation op] (weight -0.5)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        if required_set(traj.task) & set(ORIENTATION_OPS):
            return 0.0
        return 1.0 if orientation_ops_used(ctx.tool_use(traj, self.params.ops_source),
                                           self.params.include_failed_steps) else 0.0
