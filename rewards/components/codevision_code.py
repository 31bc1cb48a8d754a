"""CodeVision reward, released-code variant (ByteDance-BandAI/CodeVision,
verl/experimental/agent_loop/agent_loop.py `_compute_tool_reward_for_sample`, with the weights of
recipe/codevision/qwen3_vl.sh: alpha 1.0, beta 0.0, gamma 0.5, format_reward_weight 0.1, emerge_reward_weight 0.2,
exec_reward_weight 0.0):

    R = r_acc' + 0.1 fmt + 1.0 r_mand + 0.0 r_nec' + r_exact + r_emerge - 0.5 (c_usage + r_spur)

    r_mand  = min(1, |(S_req \\ {crop}) & used| / |S_req| + [crop in S_req and used] * max IoU / |S_req|)
    r_acc'  = r_acc * r_mand  if crop in S_req and r_mand < 0.1, else r_acc       (poor-reasoning gate)
    r_nec'  = 0 if gated; else r_nec paid to a correct tool user when < 2 rollouts of the group were correct
              without tools
    r_exact = 0.1 if S_req (core part) is non-empty and equals the core ops used
    r_emerge= 0.2 if correct and a non-core op that the released heuristics detect was used
    c_usage = code_count - max(2, |S_req|) when code_count >= max(2, |S_req|), else 0
    r_spur  = number of distinct orientation ops used when S_req has none

The whole reward is one number placed on the last response token (`_write_tool_reward_outputs`), so every
component here is episode scope. The tool's execute() returns -0.05 for a failed call, but `_call_tool` discards it
(`tool_execution_response, _, _ = await tool.execute(...)`), so CodeVision never trains on a per-failed-call
penalty: `exec_error` is logged in `configs/rewards/codevision_code.yaml` with weight 0.

Used ops: the released code parses them from each block's code before running it (tool_agent_loop.py
`_handle_processing_tools_state` calls `tool_use_judge.analyze(code)` before `_call_tool`), so a block that raised
still counts as a tool call (`code_count` = success + error counts) and its ops as used: the components here
default to `include_failed_steps: true, failed_step_ops: written` (`ReleasedToolUseParams`). Blocks never executed
(cut by the turn limit: the released loop stops before parsing the last turn's calls) are not calls.

r_acc scores the answer recipe/codevision/reward.py `extract_answer` reads (`answer_rule: codevision`) with its
`are_answers_equivalent` rule (`rules: codevision`); fmt is uvtr.py `_compute_format_reward`
(`codevision_code_format`).

Deliberate differences, each a named parameter: ops come from the sandbox's trace when there is one
(`ops_source: auto`) and crop boxes are mapped to the original image's coordinates; `ops_source: released` reads
ops and literal boxes from the code exactly as the released detector does (`rewards.codevision_detector`). n/a: with crop required but no evidence box, r_mand is n/a and the
accuracy / necessity gate is not applied (the released code would gate on a crop credit it cannot compute).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.components.accuracy import AccuracyParams, AnswerAccuracy
from rewards.components.codevision_paper import NO_BOX, CodeVisionSuggestedTool, SuggestedToolParams
from rewards.context import ScoringContext
from rewards.params import ComponentParams, ReleasedToolUseParams, ToolUseParams
from rewards.registry import register
from rewards.released_text import AnswerRule, codevision_format_ok, response_text
from rewards.required_ops import core_ops_used, crop_needs_box, mandatory_score, orientation_ops_used, required_set
from rewards.tool_use import UsedOp, executed_calls, tool_calls
from rollout.trajectory import Trajectory
from sandbox.result import CORE_OPS, ORIENTATION_OPS


class CodeVisionFormatParams(ComponentParams):
    require_think: bool = Field(True, description="the response must open with <think> and balance its think tags "
                                                  "(released); false drops that condition (this package's CodeVision "
                                                  "prompt does not ask for think tags)")


@register
class CodeVisionCodeFormat(RewardComponent):
    """Released format reward (verl/workers/reward_manager/uvtr.py `_compute_format_reward`, weight
    `format_reward_weight` 0.1) on the response text (`rewards.released_text.codevision_format_ok`): 1 when, with
    tool responses removed, the response opens with `<think>`, balances its think tags, and ends with its only
    complete `<answer>...</answer>`, which is not opened inside a think block; else 0."""

    name = "codevision_code_format"
    scope = "episode"
    Params = CodeVisionFormatParams
    source = "CodeVision released code: verl/workers/reward_manager/uvtr.py::_compute_format_reward"
    formula = "1[starts with <think>, think tags balanced, exactly one <answer>...</answer>, at the end] (weight 0.1)"
    params: CodeVisionFormatParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return 1.0 if codevision_format_ok(response_text(traj), self.params.require_think) else 0.0


class GatedAccuracyParams(AccuracyParams, ReleasedToolUseParams):
    gate_threshold: float = Field(0.1, ge=0.0, le=1.0, description="gate r_acc by r_mand below this")
    binary: bool = Field(True, description="r_acc = 1 if correct else 0 (released: `1.0 if is_correct`, with "
                                           "is_correct = base score > 0.5); False keeps a graded match score")
    answer_rule: AnswerRule = Field("codevision", description="the answer recipe/codevision/reward.py "
                                                              "`extract_answer` reads (see rewards.released_text)")
    rules: Literal["package", "codevision"] = Field(
        "codevision", description="reward.py `are_answers_equivalent` decides (what it rejects goes to the judge, "
                                  "when one is configured: the released code asks its LLM judge, 0 without one)")


def crop_gate(traj: Trajectory, ctx: ScoringContext, p: ToolUseParams, threshold: float) -> tuple[bool, float | None]:
    """(gated, r_mand): gated when crop is required and r_mand < threshold (r_mand None: no box, no gate)."""
    if crop_needs_box(traj.task):
        return False, None
    r_mand = mandatory_score(ctx.tool_use(traj, p.ops_source), traj.task, ctx.sizes(traj), p.include_failed_steps,
                             p.failed_step_ops)
    return ("crop" in required_set(traj.task) and r_mand < threshold), r_mand


@register
class CodeVisionCodeAccuracy(AnswerAccuracy):
    """Released r_acc with the poor-reasoning gate (agent_loop.py `_compute_tool_reward_for_sample`:
    `if "crop" in expected_used_set and r_mandatory < 0.1: r_acc *= r_mandatory`)."""

    name = "codevision_code_accuracy"
    Params = GatedAccuracyParams
    source = "CodeVision released code: agent_loop.py::_compute_tool_reward_for_sample (r_acc gate)"
    formula = "r_acc' = r_acc * r_mand if crop in S_req and r_mand < 0.1 else r_acc"
    params: GatedAccuracyParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        m = self.check(traj, ctx)
        gated, r_mand = crop_gate(traj, ctx, self.params, self.params.gate_threshold)
        base = (1.0 if m.correct else 0.0) if self.params.binary else m.score
        value = base * r_mand if (gated and r_mand is not None) else base
        return ComponentValue(value=value, info={"method": m.method, "correct": m.correct, "gated": gated,
                                                 "r_mand": r_mand})


@register
class CodeVisionCodeMandatory(RewardComponent):
    """Released r_mand (agent_loop.py `_mandatory_reward`); n/a when crop is required but there is no box."""

    name = "codevision_code_mandatory"
    scope = "episode"
    Params = ReleasedToolUseParams
    source = "CodeVision released code: agent_loop.py::_mandatory_reward"
    formula = "r_mand = min(1, |(S_req - {crop}) & used| / |S_req| + [crop in S_req, used] * maxIoU / |S_req|)"
    params: ReleasedToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        if crop_needs_box(traj.task):
            return ComponentValue.not_applicable(NO_BOX)
        return ComponentValue(value=mandatory_score(ctx.tool_use(traj, p.ops_source), traj.task, ctx.sizes(traj),
                                                    p.include_failed_steps, p.failed_step_ops))


class GatedNecessityParams(SuggestedToolParams):
    gate_threshold: float = Field(0.1, ge=0.0, le=1.0)
    failed_step_ops: Literal["executed", "written"] = Field(
        "written", description="failed blocks: ops that ran before the failure, or every op written in the code")


@register
class CodeVisionCodeNecessity(CodeVisionSuggestedTool):
    """Released r_nec (`_compute_tool_reward_group_stats`, `_compute_tool_reward_for_sample`), zeroed by the
    crop gate; weight beta = 0.0 in the released recipe (logged only)."""

    name = "codevision_code_necessity"
    Params = GatedNecessityParams
    source = "CodeVision released code: agent_loop.py::_compute_tool_reward_for_sample (r_necessity)"
    formula = "r_nec' = 0 if crop in S_req and r_mand < 0.1 else r_nec (group rule as the paper's)"
    params: GatedNecessityParams

    def eligible(self, traj: Trajectory, ctx: ScoringContext) -> bool:
        p = self.params
        gated, _ = crop_gate(traj, ctx, p, p.gate_threshold)
        return not gated


@register
class CodeVisionCodeExact(RewardComponent):
    """Released r_exact (agent_loop.py `_exact_match_reward`: `0.1 if expected_core and expected_core ==
    used_core else 0.0`): never paid when S_req is empty; order is not checked (sets)."""

    name = "codevision_code_exact"
    scope = "episode"
    Params = ReleasedToolUseParams
    source = "CodeVision released code: agent_loop.py::_exact_match_reward"
    formula = "1[S_req non-empty and core ops used == S_req] (weight 0.1)"
    params: ReleasedToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        req = required_set(traj.task) & set(CORE_OPS)
        if not req:
            return 0.0
        return 1.0 if core_ops_used(ctx.tool_use(traj, p.ops_source), p.include_failed_steps,
                                    p.failed_step_ops) == req else 0.0


GREY_MODES = ("L", "LA", "1", "I", "F")
# Our op names for what tool_use_judge.py `_other_transforms_from_code` detects: ImageEnhance / ImageOps
# autocontrast, equalize, invert, solarize, posterize / convertScaleAbs / equalizeHist -> enhance; ImageFilter,
# cv2 blurs -> filter; Canny, Sobel, Laplacian -> edges (or filter); erode / dilate -> morphology; resize /
# ImageOps.fit -> resize; convert("L") / cvtColor(..., *2GRAY) -> a `convert` to a grey mode.
RELEASED_EMERGENT_OPS = ["resize", "enhance", "filter", "edges", "morphology", "invert"]


def is_grey_conversion(op: UsedOp) -> bool:
    """A `convert` to a grey mode (PIL "L" / "LA" / "1" / "I" / "F", OpenCV `COLOR_*2GRAY`)."""
    d = op.detail or ""
    return op.op == "convert" and (d in GREY_MODES or d.upper().endswith("2GRAY"))


class EmergeParams(ReleasedToolUseParams):
    emergent_ops: list[str] = Field(default_factory=lambda: list(RELEASED_EMERGENT_OPS),
                                    description="non-core op names that count as emergent (the released heuristics' "
                                                "detections in this package's op names)")
    grayscale_counts: bool = Field(True, description="a conversion to a grey mode counts as emergent (released: "
                                                     "`grayscale`); other conversions (to RGB) do not")


@register
class CodeVisionCodeEmerge(RewardComponent):
    """Released r_emerge (agent_loop.py `_emerging_tool_bonus`: `emerge_weight if is_correct and (used_set -
    core_ops)`), where used_set holds what tool_use_judge.py detects: resize, grayscale, brightness / contrast /
    sharpness / color, blur, sharpen, edges, autocontrast, equalize, invert, solarize, posterize, erode, dilate."""

    name = "codevision_code_emerge"
    scope = "episode"
    Params = EmergeParams
    source = "CodeVision released code: agent_loop.py::_emerging_tool_bonus, tool_use_judge.py::_other_transforms_from_code"
    formula = "1[correct and a non-core op detected by the released heuristics was used] (weight 0.2)"
    params: EmergeParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        p = self.params
        emergent = set(p.emergent_ops) - set(CORE_OPS)
        found: set[str] = set()
        for s in ctx.tool_use(traj, p.ops_source):
            if not (s.ran if p.include_failed_steps else s.ok):
                continue
            for o in s.all_ops(p.failed_step_ops):
                if o.op in emergent or (s.source == "released" and o.op not in CORE_OPS):
                    found.add(o.op)
                elif p.grayscale_counts and is_grey_conversion(o):
                    found.add("grayscale")
        if not found:
            return ComponentValue(value=0.0)
        return ComponentValue(value=1.0 if ctx.correct(traj) else 0.0, info={"ops": sorted(found)})


class UsageCostParams(ReleasedToolUseParams):
    free_calls: int = Field(2, ge=0, description="code blocks allowed before the cost starts: max(free_calls, |S_req|)")


@register
class CodeVisionCodeUsageCost(RewardComponent):
    """Released c_usage (agent_loop.py `_code_usage_penalty`) over code_count = executed blocks, failed ones
    included (tool_agent_loop.py: `tool_exec_error_count + tool_exec_success_count`)."""

    name = "codevision_code_usage_cost"
    scope = "episode"
    Params = UsageCostParams
    source = "CodeVision released code: agent_loop.py::_code_usage_penalty"
    formula = "c_usage = max(0, code_count - max(2, |S_req|)), code_count = executed code blocks (weight -0.5)"
    params: UsageCostParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        p = self.params
        uses = ctx.tool_use(traj, p.ops_source)
        calls = executed_calls(traj) if p.include_failed_steps else tool_calls(uses, False)
        return float(max(0, calls - max(p.free_calls, len(required_set(traj.task)))))


@register
class CodeVisionCodeSpurious(RewardComponent):
    """Released r_spur (agent_loop.py `_spurious_penalty`)."""

    name = "codevision_code_spurious"
    scope = "episode"
    Params = ReleasedToolUseParams
    source = "CodeVision released code: agent_loop.py::_spurious_penalty"
    formula = "r_spur = number of distinct orientation ops used when S_req has none (weight -0.5)"
    params: ReleasedToolUseParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        if required_set(traj.task) & set(ORIENTATION_OPS):
            return 0.0
        p = self.params
        return float(len(orientation_ops_used(ctx.tool_use(traj, p.ops_source), p.include_failed_steps,
                                              p.failed_step_ops)))
