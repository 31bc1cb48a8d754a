"""CodeVision reward, paper variant ("Thinking with Programming Vision", arXiv 2512.03746, section "Reward"):

    R = r_acc + 0.1 r_fmt + b1 * sum_t R_strategy(a_t) - b2 * P_cost            (b1 = 1.0, b2 = 0.5)

Strategy: `codevision_must_use` (step scope, `reduce: sum` = the paper's sum over t), `codevision_exact_set`,
`codevision_suggested_tool` (group scope, weight 0.2). Penalties, each 0/1 with weight -0.5:
`codevision_turn_penalty`, `codevision_poor_reasoning`, `codevision_inappropriate_tool`. Which ops were used
comes from `rewards.tool_use` (trace, AST fallback); a must-use op is credited where it was "used correctly",
i.e. in a block that ran to the end. Blocks never executed (cut by the turn limit) are not tool calls.
The paper's group rule for the suggested tool is the one the released code implements
(verl/experimental/agent_loop/agent_loop.py `_compute_tool_reward_for_sample` and
`_compute_tool_reward_group_stats` of ByteDance-BandAI/CodeVision); the paper set reuses it.

n/a: with crop required but no evidence box, crop credit cannot be judged, so `codevision_must_use` and
`codevision_poor_reasoning` are n/a (counted, never 0); a rollout without a group id has no group for
`codevision_suggested_tool` (n/a).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.required_ops import (core_ops_used, crop_needs_box, first_use_order, max_crop_iou, must_use_credits,
                                  orientation_ops_used, required_set)
from rewards.tool_use import StepToolUse, executed_calls, tool_calls, used_ops
from rollout.trajectory import Trajectory
from sandbox.result import ORIENTATION_OPS

NO_BOX = "crop is required but the task has no evidence box"


@register
class CodeVisionMustUse(RewardComponent):
    """CodeVision paper, strategy reward R_strategy(a_t): per step t, each must-use op of S_req other than crop
    earns 1/|S_req| the first time it is used correctly; crop earns (IoU_t - best earlier IoU)^+ / |S_req|
    (IoU with the ground-truth box). Summed over steps (`reduce: sum`), it equals the released code's r_mand
    before its cap (agent_loop.py `_mandatory_reward`)."""

    name = "codevision_must_use"
    scope = "step"
    Params = ToolUseParams
    default_reduce = "sum"
    source = ("CodeVision paper (arXiv 2512.03746) strategy reward; released counterpart: "
              "agent_loop.py::_mandatory_reward")
    formula = ("m_t = sum over ops first used correctly at t of 1/|S_req| (ops of S_req except crop) "
               "+ (IoU_t - max IoU before t)^+ / |S_req| if crop in S_req; R = sum_t m_t")
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        if crop_needs_box(traj.task):
            return ComponentValue.not_applicable(NO_BOX)
        uses = ctx.tool_use(traj, p.ops_source)
        return ComponentValue(steps=must_use_credits(uses, traj.task, ctx.sizes(traj), p.include_failed_steps,
                                                     p.failed_step_ops))


class ExactSetParams(ToolUseParams):
    require_no_wasted_steps: bool = Field(True, description="also require every executed code step to run to the "
                                                            "end and use an op of S_req")
    require_order: bool = Field(True, description="the ops of S_req must first be used in the order the task "
                                                  "lists them (Task.required_ops)")


@register
class CodeVisionExactSet(RewardComponent):
    """CodeVision paper: bonus when exactly S_req is executed, in order, with no wasted steps. Never paid when S_req
    is empty (as the released `_exact_match_reward`: `expected_core and expected_core == used_core`)."""

    name = "codevision_exact_set"
    scope = "episode"
    Params = ExactSetParams
    source = ("CodeVision paper (arXiv 2512.03746) exact-set bonus; released counterpart: "
              "agent_loop.py::_exact_match_reward")
    formula = ("1[S_req non-empty, core ops used == S_req, first used in S_req's order, every executed step ran to "
               "the end using an op of S_req] (weight 0.1)")
    params: ExactSetParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        uses = ctx.tool_use(traj, p.ops_source)
        req = required_set(traj.task)
        if not req:
            return ComponentValue(value=0.0, info={"reason": "S_req is empty"})
        used = core_ops_used(uses, p.include_failed_steps, p.failed_step_ops)
        if used != req:
            return ComponentValue(value=0.0, info={"reason": "used core ops differ from S_req", "used": sorted(used)})
        if p.require_order:
            order = first_use_order(uses, req, p.include_failed_steps, p.failed_step_ops)
            wanted = [op for op in traj.task.required_ops if op in req]
            if order != list(dict.fromkeys(wanted)):
                return ComponentValue(value=0.0, info={"reason": "out of order", "order": order})
        if p.require_no_wasted_steps and any(not (s.ok and (s.op_names() & req)) for s in uses if s.ran):
            return ComponentValue(value=0.0, info={"reason": "wasted step"})
        return ComponentValue(value=1.0)


class SuggestedToolParams(ToolUseParams):
    tools: list[str] | None = Field(None, description="ops that count as the suggested tool (None: any executed "
                                                      "code step)")
    metadata_key: str = Field("suggested_ops", description="Task.metadata key that overrides `tools` per task")
    include_failed_steps: bool = Field(True, description="a block that raised still counts as using a tool "
                                                         "(released `used_any_tool`: any code execution)")
    max_correct_without_tool: int = Field(1, ge=0, description="paid only when at most this many rollouts of the "
                                                               "group are correct without tools (released: < 2)")
    require_correct: bool = Field(True, description="paid only to a correct rollout that used a tool")


def uses_tool(uses: Sequence[StepToolUse], tools: list[str] | None, include_failed: bool) -> bool:
    """Whether a rollout used the suggested tool: any of `tools`, or with None any counted code step."""
    if tools is None:
        return tool_calls(uses, include_failed) > 0
    return bool(used_ops(uses, include_failed) & set(tools))


def necessity(used: Sequence[bool], correct: Sequence[bool]) -> float:
    """r_nec = max(0, acc(rollouts that used the tool) - acc(rollouts that did not)); 0 when no rollout of the
    group went without the tool (released `_compute_tool_reward_group_stats`: `... if total_without_tool > 0
    else 0.0`) and, trivially, when none used it."""
    yes = [c for u, c in zip(used, correct, strict=True) if u]
    no = [c for u, c in zip(used, correct, strict=True) if not u]
    if not yes or not no:
        return 0.0
    return max(0.0, sum(yes) / len(yes) - sum(no) / len(no))


@register
class CodeVisionSuggestedTool(RewardComponent):
    """CodeVision suggested-tool (necessity) bonus over the group of rollouts of one task: r_nec paid only to a
    rollout that is correct and used a tool, and only when fewer than 2 rollouts of the group were correct
    without tools (agent_loop.py `_compute_tool_reward_for_sample`: `r_necessity = value if (is_correct and
    used_any_tool and correct_without_tool < 2) else 0.0`)."""

    name = "codevision_suggested_tool"
    scope = "group"
    Params = SuggestedToolParams
    source = ("CodeVision paper r_nec; released agent_loop.py::_compute_tool_reward_group_stats and "
              "::_compute_tool_reward_for_sample")
    formula = ("r_nec = max(0, acc(tool users) - acc(others)) paid to a correct tool user when the group has < 2 "
               "correct rollouts without tools, else 0")
    params: SuggestedToolParams

    def tools_for(self, traj: Trajectory) -> list[str] | None:
        meta = traj.task.metadata.get(self.params.metadata_key)
        return list(meta) if isinstance(meta, (list, tuple)) else self.params.tools

    def eligible(self, traj: Trajectory, ctx: ScoringContext) -> bool:
        """Whether a rollout may receive the bonus beyond the group rule (the code variant adds its crop gate)."""
        return True

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> list[ComponentValue]:
        p = self.params
        used = [uses_tool(ctx.tool_use(t, p.ops_source), self.tools_for(t), p.include_failed_steps) for t in trajs]
        correct = [ctx.correct(t) for t in trajs]
        r = necessity(used, correct)
        correct_without = sum(1 for u, c in zip(used, correct, strict=True) if c and not u)
        group_ok = correct_without <= p.max_correct_without_tool
        out = []
        for t, u, c in zip(trajs, used, correct, strict=True):
            paid = u and group_ok and (c or not p.require_correct) and self.eligible(t, ctx)
            out.append(ComponentValue(value=r if paid else 0.0,
                                      info={"r_nec": r, "used_tool": u, "correct_without_tool": correct_without}))
        return out


class TurnPenaltyParams(ToolUseParams):
    extra_turns: int = Field(1, ge=0, description="tool turns allowed beyond |S_req|")


@register
class CodeVisionTurnPenalty(RewardComponent):
    """CodeVision paper penalty: more tool turns than |S_req| + 1. A tool turn is an executed code block (a block
    cut by the turn limit, never executed, is not a tool call)."""

    name = "codevision_turn_penalty"
    scope = "episode"
    Params = TurnPenaltyParams
    source = "CodeVision paper (arXiv 2512.03746) cost penalty: turn count"
    formula = "1[executed code blocks > |S_req| + 1] (weight -0.5)"
    params: TurnPenaltyParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return 1.0 if executed_calls(traj) > len(required_set(traj.task)) + self.params.extra_turns else 0.0


class PoorReasoningParams(ToolUseParams):
    iou_threshold: float = Field(0.1, ge=0.0, le=1.0)


@register
class CodeVisionPoorReasoning(RewardComponent):
    """CodeVision paper penalty: a correct answer whose crops never reached IoU 0.1 with the ground-truth box
    ("poor reasoning"). n/a when crop is required but the task has no box."""

    name = "codevision_poor_reasoning"
    scope = "episode"
    Params = PoorReasoningParams
    source = ("CodeVision paper (arXiv 2512.03746) poor-reasoning penalty; released counterpart: the r_acc gate "
              "in agent_loop.py::_compute_tool_reward_for_sample")
    formula = "1[correct and crop in S_req and max crop IoU < 0.1] (weight -0.5)"
    params: PoorReasoningParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        if crop_needs_box(traj.task):
            return ComponentValue.not_applicable(NO_BOX)
        if "crop" not in required_set(traj.task) or not ctx.correct(traj):
            return ComponentValue(value=0.0)
        iou = max_crop_iou(ctx.tool_use(traj, p.ops_source), traj.task, ctx.sizes(traj), p.include_failed_steps,
                           p.failed_step_ops)
        return ComponentValue(value=1.0 if iou < p.iou_threshold else 0.0, info={"max_iou": iou})


@register
class CodeVisionInappropriateTool(RewardComponent):
    """CodeVision paper penalty: an orientation tool used when none was needed."""

    name = "codevision_inappropriate_tool"
    scope = "episode"
    Params = ToolUseParams
    source = ("CodeVision paper (arXiv 2512.03746) inappropriate-tool penalty; released counterpart: "
              "agent_loop.py::_spurious_penalty")
    formula = "1[an orientation op used and S_req has no orientation op] (weight -0.5)"
    params: ToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        if required_set(traj.task) & set(ORIENTATION_OPS):
            return 0.0
        p = self.params
        return 1.0 if orientation_ops_used(ctx.tool_use(traj, p.ops_source), p.include_failed_steps,
                                           p.failed_step_ops) else 0.0
