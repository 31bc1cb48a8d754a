"""CodeVision reward, released-code variant (docs/methods.md, "Reward (released code variant)"):

    R = r_acc' + 0.1 fmt + 1.0 r_mand + 0.0 r_nec' + 0.1 [exact] + 0.2 [emerge] - 0.5 (c_usage + r_spur)
        - 0.05 per failed tool call (step reward, `exec_error`)

    r_mand  = min(1, |(S_req \\ {crop}) & used| / |S_req| + [crop in S_req and used] * max IoU / |S_req|)
    r_acc'  = r_acc * r_mand  if crop in S_req and r_mand < 0.1, else r_acc       (poor-reasoning gating)
    r_nec'  = 0               if crop in S_req and r_mand < 0.1, else r_nec
    exact   = core ops used == S_req (as sets)
    emerge  = correct and a non-core op was used (ignoring `ignore_ops`)
    c_usage = max(0, code_count - max(2, |S_req|))
    r_spur  = number of distinct orientation ops used, when S_req has no orientation op

Everything is placed at the end of the episode (the released code puts the reward on the last response token),
except the failed-call penalty. Indicator components return 0/1 and the magnitude is the weight in
`configs/rewards/codevision_code.yaml`. The released code detects used ops with regex/AST heuristics; here
`ops_source: auto` uses the trace when there is one (`ops_source: code` reproduces detection from code).
"""

from __future__ import annotations

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.components.accuracy import AccuracyParams, AnswerAccuracy
from rewards.components.codevision_paper import CodeVisionSuggestedTool, SuggestedToolParams
from rewards.context import ScoringContext
from rewards.params import OpsSource, ToolUseParams
from rewards.registry import register
from rewards.required_ops import core_ops_used, mandatory_score, orientation_ops_used, required_set
from rewards.tool_use import used_ops
from rollout.trajectory import Trajectory
from sandbox.result import CORE_OPS, ORIENTATION_OPS


class GatedAccuracyParams(AccuracyParams):
    ops_source: OpsSource = "auto"
    include_failed_steps: bool = False
    gate_threshold: float = Field(0.1, ge=0.0, le=1.0, description="gate r_acc by r_mand below this")


def crop_gate(traj: Trajectory, ctx: ScoringContext, ops_source: OpsSource, include_failed: bool,
              threshold: float) -> tuple[bool, float]:
    """(gated, r_mand): gated when crop is required and r_mand < threshold."""
    r_mand = mandatory_score(ctx.tool_use(traj, ops_source), traj.task, ctx.sizes(traj), include_failed)
    return ("crop" in required_set(traj.task) and r_mand < threshold), r_mand


@register
class CodeVisionCodeAccuracy(AnswerAccuracy):
    name = "codevision_code_accuracy"
    Params = GatedAccuracyParams
    source = "CodeVision released code: r_acc gated by r_mand when crop is required (docs/methods.md)"
    formula = "r_acc' = r_acc * r_mand if crop in S_req and r_mand < 0.1 else r_acc"
    params: GatedAccuracyParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        m = self.check(traj, ctx)
        p = self.params
        gated, r_mand = crop_gate(traj, ctx, p.ops_source, p.include_failed_steps, p.gate_threshold)
        value = m.score * r_mand if gated else m.score
        return ComponentValue(value=value, info={"method": m.method, "correct": m.correct, "gated": gated,
                                                 "r_mand": r_mand})


@register
class CodeVisionCodeMandatory(RewardComponent):
    name = "codevision_code_mandatory"
    scope = "episode"
    Params = ToolUseParams
    source = "CodeVision released code: r_mand (docs/methods.md)"
    formula = "r_mand = min(1, |(S_req - {crop}) & used| / |S_req| + [crop in S_req, used] * maxIoU / |S_req|)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        return mandatory_score(ctx.tool_use(traj, p.ops_source), traj.task, ctx.sizes(traj), p.include_failed_steps)


class GatedNecessityParams(SuggestedToolParams):
    gate_threshold: float = Field(0.1, ge=0.0, le=1.0)


@register
class CodeVisionCodeNecessity(CodeVisionSuggestedTool):
    name = "codevision_code_necessity"
    Params = GatedNecessityParams
    source = "CodeVision released code: r_nec (weight 0.0), zeroed with the accuracy gate (docs/methods.md)"
    formula = "r_nec' = 0 if crop in S_req and r_mand < 0.1 else r_nec"
    params: GatedNecessityParams

    def eligible(self, traj: Trajectory, ctx: ScoringContext) -> bool:
        p = self.params
        gated, _ = crop_gate(traj, ctx, p.ops_source, p.include_failed_steps, p.gate_threshold)
        return not gated


@register
class CodeVisionCodeExact(RewardComponent):
    name = "codevision_code_exact"
    scope = "episode"
    Params = ToolUseParams
    source = "CodeVision released code: r_exact = 0.1 when used core ops equal S_req (docs/methods.md)"
    formula = "1[core ops used == S_req] (weight 0.1)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        return 1.0 if core_ops_used(ctx.tool_use(traj, p.ops_source), p.include_failed_steps) == required_set(traj.task) else 0.0


class EmergeParams(ToolUseParams):
    ignore_ops: list[str] = Field(default_factory=lambda: ["resize", "convert"],
                                  description="non-core ops that do not count as emergent (incidental)")


@register
class CodeVisionCodeEmerge(RewardComponent):
    name = "codevision_code_emerge"
    scope = "episode"
    Params = EmergeParams
    source = "CodeVision released code: r_emerge = 0.2 when correct and a non-core op was used (docs/methods.md)"
    formula = "1[correct and a non-core op used] (weight 0.2)"
    params: EmergeParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        extra = used_ops(ctx.tool_use(traj, p.ops_source), p.include_failed_steps) - set(CORE_OPS) - set(p.ignore_ops)
        if not extra:
            return ComponentValue(value=0.0)
        return ComponentValue(value=1.0 if ctx.correct(traj) else 0.0, info={"ops": sorted(extra)})


class UsageCostParams(ToolUseParams):
    free_calls: int = Field(2, ge=0, description="code blocks allowed before the cost starts: max(free_calls, |S_req|)")


@register
class CodeVisionCodeUsageCost(RewardComponent):
    name = "codevision_code_usage_cost"
    scope = "episode"
    Params = UsageCostParams
    source = "CodeVision released code: c_usage (docs/methods.md)"
    formula = "c_usage = max(0, code_count - max(2, |S_req|)) (weight -0.5)"
    params: UsageCostParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return float(max(0, len(traj.steps) - max(self.params.free_calls, len(required_set(traj.task)))))


@register
class CodeVisionCodeSpurious(RewardComponent):
    name = "codevision_code_spurious"
    scope = "episode"
    Params = ToolUseParams
    source = "CodeVision released code: r_spur (docs/methods.md)"
    formula = "r_spur = number of distinct orientation ops used when S_req has none (weight -0.5)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        if required_set(traj.task) & set(ORIENTATION_OPS):
            return 0.0
        p = self.params
        return float(len(orientation_ops_used(ctx.tool_use(traj, p.ops_source), p.include_failed_steps)))
