"""TAPO (CodeV: "Code with Images for Faithful Visual Reasoning via Tool-Aware Policy Optimization", Hou et al.,
2025) tool rewards.

Paper: R = l_acc * r_acc + l_tool * r_tool, r_tool = the mean over the code steps of a per-step score defined on
the tool's inputs and outputs only (question + tool output + metadata), never on the chain of thought.
`tapo_tool` is that per-step score (step scope, `reduce: mean`: the set's total is exactly l_acc r_acc + l_tool
r_tool, and each step's share l_tool s_t / m lands on its own tokens for dense advantages). Per step t:

    never executed (cut by the turn limit, sandbox down)         -> n/a: not a code call, left out of the mean
    failed with an avoidable status (error, timeout, memory,
      output limit: the model's code is at fault)               -> -1     (redline: error)
    failed otherwise (worker crashed, killed by the pool)       -> 0      (unavoidable_failure)
    a crop with invalid coordinates (x2 <= x1 or y2 <= y1, or
      less than `min_inside_fraction` of it inside the image)   -> -1     (redline: invalid_coordinates)
    every crop of the step is a no-op (covers >= `noop_area_fraction` of the image) or repeats an earlier
      crop (IoU >= `repeat_iou`)                                -> -1     (redline: repeated_noop_crop)
    rules (the task has evidence boxes), over the step's shown images with a traced region derived by some op:
      an output contains the evidence (coverage >= min_coverage) and it is the main focus (focus >= min_focus)
                                                                -> 1      (hit)
      an output contains it but in a huge / cluttered view      -> 0.25   (cluttered)
      otherwise                                                 -> 0      (miss)
    judge (no evidence boxes, `judge` configured; or mode judge): the rubric below, SCORE in [-1, 1]; a step
      with no output at all scores 0 without a call                        (empty_output)
    no evidence and no judge                                    -> n/a    (nothing to judge the step against;
                                                                           `no_evidence_score: 0` restores the
                                                                           rubric's "about 0" if you prefer)

With every step n/a the component is n/a for the trajectory (counted, not 0). A failed judge call marks the
component failed for that trajectory (excluded from the total, the episode masked by the trainer).

`tapo_process` is the released internal-code variant: score = 1.0 acc + 0.3 format + 0.5 process, where process
is one rubric score per trajectory in {0, .25, .5, .75, 1} given by a judge that sees the full response, the
ground truth and the image; a failed call is recorded as failed, a score outside [0, 1] is clamped into it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from rewards.boxes import Box, box_area, clip_box, inside_fraction, iou, is_degenerate
from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.errors import ComponentError
from rewards.evidence import match_evidence
from rewards.judge import JudgeConfig, JudgeReply, get_judge, image_part, parse_tagged_number, text_part
from rewards.params import ToolUseParams
from rewards.registry import register
from rewards.released_text import codev_format_ok, response_text
from rewards.tool_use import StepToolUse
from rollout.protocols.base import truncate_middle
from rollout.trajectory import Trajectory

TAPO_STEP_RUBRIC = (
    "You score one tool call of a visual agent that answers questions about images by writing Python that crops, "
    "rotates, flips or enhances them. You see the question, the call's metadata and its output (text and images), "
    "not the agent's reasoning. Score the call:\n"
    "  1.0  the output clearly shows a region relevant to the question (the needed object or text is visible and "
    "is the main focus);\n"
    "  0.25 the relevant region is in the output but small inside a huge or cluttered view;\n"
    "  0.0  the output is unrelated to the question, or the question needs no visual search;\n"
    "  -1.0 misuse: invalid or nonsensical coordinates, a crop repeating an earlier one, an output that shows "
    "nothing useful because of an avoidable mistake.\n"
    "Intermediate values are allowed. End your reply with one line: 'SCORE: <number between -1 and 1>'."
)

TAPO_PROCESS_RUBRIC = (
    "You rate the whole tool-use process of a visual agent that answers a question about an image by writing "
    "Python that crops, rotates, flips or enhances it. You see the image, the question, the ground-truth answer, "
    "the agent's full response (its messages and the tool outputs) and the tool output images. Rate whether the "
    "tool calls were necessary and their outputs contain the evidence the question needs: 1 = every call useful "
    "and the evidence clearly found; 0.75 = evidence found with some wasted calls; 0.5 = partially relevant; "
    "0.25 = mostly irrelevant; 0 = irrelevant or misused tools, or no tool used when one was needed. End your "
    "reply with one line: 'SCORE: <one of 0, 0.25, 0.5, 0.75, 1>'."
)

AVOIDABLE = ("error", "timeout", "memory", "output_limit")


class TapoToolParams(ToolUseParams):
    mode: Literal["auto", "rule", "judge"] = Field("auto", description="auto: rules with evidence boxes, else judge")
    reduce: Literal["sum", "mean"] = "mean"
    judge: JudgeConfig | None = None
    hit_score: float = 1.0
    cluttered_score: float = 0.25
    miss_score: float = 0.0
    redline_score: float = -1.0
    no_evidence_score: float | None = Field(None, description="score of a clean step with no evidence box and no "
                                                              "judge; None: n/a (nothing to judge)")
    min_coverage: float = Field(0.8, gt=0.0, le=1.0)
    min_focus: float = Field(0.04, ge=0.0, le=1.0)
    min_inside_fraction: float = Field(0.5, ge=0.0, le=1.0)
    repeat_iou: float = Field(0.95, gt=0.0, le=1.0)
    noop_area_fraction: float = Field(0.95, gt=0.0, le=1.0)
    avoidable_statuses: list[Literal["error", "timeout", "memory", "output_limit", "crashed", "killed"]] = Field(
        default_factory=lambda: list(AVOIDABLE))  # type: ignore[arg-type]
    stdout_max_chars: int = Field(1000, gt=0, description="text output shown to the judge")


def _image_size(sizes: Sequence[tuple[int, int]] | None, index: int) -> tuple[int, int] | None:
    return sizes[index] if sizes is not None and 0 <= index < len(sizes) else None


def redline(use: StepToolUse, earlier: Sequence[tuple[int, Box]], sizes: Sequence[tuple[int, int]] | None,
            p: TapoToolParams) -> str | None:
    """The rule-based misuse checks (see the module docstring); the reason, or None when the step is clean."""
    assert use.status is not None
    if use.status.value in p.avoidable_statuses:
        return "error"
    crops = use.crop_boxes()
    for i, box in crops:
        size = _image_size(sizes, i)
        if is_degenerate(box) or (size is not None and inside_fraction(box, *size) < p.min_inside_fraction):
            return "invalid_coordinates"

    def noop_or_repeat(i: int, box: Box) -> bool:
        size = _image_size(sizes, i)
        if size is not None and box_area(clip_box(box, *size)) >= p.noop_area_fraction * size[0] * size[1]:
            return True
        return any(j == i and iou(box, b) >= p.repeat_iou for j, b in earlier)

    if crops and all(noop_or_repeat(i, box) for i, box in crops):
        return "repeated_noop_crop"
    return None


def rule_step_score(use: StepToolUse, traj: Trajectory, sizes: Sequence[tuple[int, int]] | None,
                    p: TapoToolParams) -> tuple[float, str]:
    """Evidence-based score of a clean step (rules)."""
    contained = False
    for out in use.outputs:
        if out.region is None or not out.region.ops:
            continue
        m = match_evidence(out.region.input_index, tuple(out.region.box), traj.task.evidence, sizes)  # type: ignore[arg-type]
        if m is None or m.coverage < p.min_coverage:
            continue
        if m.focus >= p.min_focus:
            return p.hit_score, "hit"
        contained = True
    return (p.cluttered_score, "cluttered") if contained else (p.miss_score, "miss")


def step_judge_messages(traj: Trajectory, use: StepToolUse, p: TapoToolParams, max_side: int) -> list[dict[str, Any]] | None:
    """The judge request for one step, or None when the step showed and printed nothing."""
    result = traj.steps[use.index].result
    assert result is not None
    text = "\n".join(x for x in (result.stdout.strip(), (result.value_repr or "").strip()) if x)
    if not text and not result.images:
        return None
    sizes = [im.size for im in traj.images if im.origin == "input"]
    ops = sorted(use.op_names()) or ["none traced"]
    crops = [f"crop {tuple(round(v) for v in box)} of image {i}" + (f" ({sizes[i][0]}x{sizes[i][1]})" if i < len(sizes) else "")
             for i, box in use.crop_boxes()]
    meta = (f"Question: {traj.task.question}\nTool call {use.index + 1} of {len(traj.steps)}; status: "
            f"{use.status.value if use.status else 'not run'}; operations: {', '.join(ops)}"
            + (f"; {'; '.join(crops)}" if crops else "")
            + f"\nText output:\n{truncate_middle(text, p.stdout_max_chars) if text else '(none)'}"
            + f"\nImage outputs: {len(result.images)}")
    content: list[dict[str, Any]] = [text_part(meta)]
    content += [image_part(im.array, max_side) for im in result.images]
    content.append(text_part("Score this tool call."))
    return [{"role": "system", "content": TAPO_STEP_RUBRIC}, {"role": "user", "content": content}]


@register
class TapoTool(RewardComponent):
    name = "tapo_tool"
    scope = "step"
    Params = TapoToolParams
    default_reduce = "mean"
    source = "CodeV / TAPO paper (Hou et al. 2025): r_tool = mean over code steps of the step rubric"
    formula = ("s_t = 1 evidence in a focused output | 0.25 huge/cluttered | 0 miss | -1 redline (avoidable error, "
               "invalid coords, repeated/no-op crop); judge rubric without boxes; r_tool = mean over executed steps")
    params: TapoToolParams

    def _use_judge(self, traj: Trajectory) -> bool:
        p = self.params
        if p.judge is None:
            return False
        return p.mode == "judge" or (p.mode == "auto" and not traj.task.evidence)

    def plan(self, traj: Trajectory, ctx: ScoringContext) -> tuple[list[float | None], list[str], list[tuple[int, list[dict[str, Any]]]]]:
        """Rule scores per step, reasons, and the judge requests still needed (step index, messages)."""
        p = self.params
        uses = ctx.tool_use(traj, p.ops_source)
        sizes = ctx.sizes(traj)
        judge = self._use_judge(traj)
        scores: list[float | None] = []
        reasons: list[str] = []
        requests: list[tuple[int, list[dict[str, Any]]]] = []
        earlier: list[tuple[int, Box]] = []
        for use in uses:
            score: float | None
            if not use.ran:
                score, reason = None, "not_run"
            elif (why := redline(use, earlier, sizes, p)) is not None:
                score, reason = p.redline_score, why
            elif not use.ok:
                score, reason = 0.0, "unavoidable_failure"
            elif judge:
                assert p.judge is not None
                msgs = step_judge_messages(traj, use, p, p.judge.image_max_side)
                if msgs is None:
                    score, reason = 0.0, "empty_output"
                else:
                    score, reason = None, "judge"
                    requests.append((use.index, msgs))
            elif traj.task.evidence:
                score, reason = rule_step_score(use, traj, sizes, p)
            else:
                score, reason = p.no_evidence_score, "no_evidence"
            if use.ran:
                earlier += use.crop_boxes()
            scores.append(score)
            reasons.append(reason)
        return scores, reasons, requests

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        return self.score_batch([traj], [[0]], ctx)[0]

    def score_batch(self, trajs: Sequence[Trajectory], groups: Sequence[Sequence[int]],
                    ctx: ScoringContext) -> list[ComponentValue]:
        plans = []
        for t in trajs:
            try:
                plans.append(self.plan(t, ctx))
            except Exception as exc:
                raise ComponentError(self.key, [t.id], exc) from exc
        flat = [(k, step, msgs) for k, (_, _, reqs) in enumerate(plans) for step, msgs in reqs]
        replies: list[JudgeReply] = []
        if flat:
            assert self.params.judge is not None
            replies = get_judge(self.params.judge).complete_many([msgs for _, _, msgs in flat])
        errors: dict[int, list[str]] = {}
        for (k, step, _), reply in zip(flat, replies, strict=True):
            scores = plans[k][0]
            if not reply.ok:
                errors.setdefault(k, []).append(f"step {step}: {reply.error}")
                continue
            try:
                scores[step] = parse_tagged_number(reply.text or "", "SCORE", low=-1.0, high=1.0)
            except ValueError as exc:
                errors.setdefault(k, []).append(f"step {step}: {exc}")
        out = []
        for k, (t, (scores, reasons, _)) in enumerate(zip(trajs, plans, strict=True)):
            info = {"reasons": reasons}
            na = None
            if scores and all(v is None for v in scores) and k not in errors:
                na = ("no evidence box and no judge: nothing to judge the steps against"
                      if "no_evidence" in reasons else "no executed code step")
            value = (ComponentValue.failed("; ".join(errors[k]), steps=scores, info=info) if k in errors
                     else ComponentValue(steps=scores, info=info, na=na))
            try:
                out.append(self.normalise(value, t))
            except Exception as exc:
                raise ComponentError(self.key, [t.id], exc) from exc
        return out


@register
class CodeVFormat(RewardComponent):
    """CodeV's released format term (rl/verl/utils/reward_score/vl_agent.py `compute_score_generative`: `format_reward
    = 0.0 if is_format_error else 1.0`, weight 0.3) on the response text (`rewards.released_text.codev_format_ok`):
    0 on unbalanced `<code>` or `<think>` tags, a `<code>` after the last `</answer>`, unbalanced answer tags after
    the last `</think>`, several answers, or no answer (neither a closed `<answer>` nor a `\\boxed{}`); else 1."""

    name = "codev_format"
    scope = "episode"
    source = ("CodeV released code: vl_agent.py::check_format_errors and the answer errors of "
              "::extract_and_verify_answer")
    formula = "1[code / think / answer tags balanced, no code after the answer, exactly one answer] (weight 0.3)"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return 1.0 if codev_format_ok(response_text(traj)) else 0.0


class TapoProcessParams(ToolUseParams):
    judge: JudgeConfig
    max_images: int = Field(8, ge=0, description="tool output images sent to the judge (the first ones)")
    judge_no_tool: bool = Field(True, description="also judge trajectories without code steps (released: one "
                                                  "score per trajectory); False: `no_tool_score` without a call")
    no_tool_score: float = Field(0.0, description="score of a trajectory without code steps when not judged")
    response_max_chars: int = Field(8000, gt=0, description="the full response is shown up to this many characters")


@register
class TapoProcess(RewardComponent):
    """CodeV's released internal-code process reward: one rubric score per trajectory in {0, .25, .5, .75, 1};
    the judge sees the full response, the ground truth and the image. A failed call is recorded as failed (the
    trainer masks the episode); a score outside [0, 1] is clamped into it."""

    name = "tapo_process"
    scope = "episode"
    Params = TapoProcessParams
    source = "CodeV released internal code: score = 1.0 acc + 0.3 format + 0.5 process (one judge score per trajectory)"
    formula = "process = judge rubric score of the whole response in {0, .25, .5, .75, 1}, clamped to [0, 1]"
    params: TapoProcessParams

    def messages(self, traj: Trajectory, ctx: ScoringContext) -> list[dict[str, Any]]:
        p = self.params
        response = "\n".join(f"[{'assistant' if t.role == 'assistant' else 'tool output'}]\n{t.text}"
                              for t in traj.turns)
        head = (f"Question: {traj.task.question}\nGround-truth answer: {traj.task.answer}\n"
                f"Full response:\n{truncate_middle(response, p.response_max_chars)}")
        inputs = [im.array for im in traj.images if im.origin == "input"]
        outputs = [im.array for s in traj.steps if s.result is not None for im in s.result.images]
        content: list[dict[str, Any]] = [text_part("Image:")]
        content += [image_part(a, p.judge.image_max_side) for a in inputs]
        content.append(text_part(head))
        if outputs and p.max_images:
            content.append(text_part("Tool output images:"))
            content += [image_part(a, p.judge.image_max_side) for a in outputs[: p.max_images]]
        content.append(text_part("Rate the tool-use process."))
        return [{"role": "system", "content": TAPO_PROCESS_RUBRIC}, {"role": "user", "content": content}]

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        return self.score_batch([traj], [[0]], ctx)[0]

    def score_batch(self, trajs: Sequence[Trajectory], groups: Sequence[Sequence[int]],
                    ctx: ScoringContext) -> list[ComponentValue]:
        todo, msgs = [], []
        for k, t in enumerate(trajs):
            if t.steps or self.params.judge_no_tool:
                try:
                    msgs.append(self.messages(t, ctx))
                except Exception as exc:
                    raise ComponentError(self.key, [t.id], exc) from exc
                todo.append(k)
        replies = get_judge(self.params.judge).complete_many(msgs) if msgs else []
        out = [ComponentValue(value=self.params.no_tool_score, info={"reason": "no_tool"}) for _ in trajs]
        for k, reply in zip(todo, replies, strict=True):
            if not reply.ok:
                out[k] = ComponentValue.failed(reply.error or "judge failed")
                continue
            try:
                raw = parse_tagged_number(reply.text or "", "SCORE", low=-math.inf, high=math.inf)
            except ValueError as exc:
                out[k] = ComponentValue.failed(f"tapo_process judge: {exc}")
                continue
            v = min(1.0, max(0.0, raw))
            out[k] = ComponentValue(value=v, info={"raw": raw} if v != raw else {})
        return out
