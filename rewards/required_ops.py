"""CodeVision's strategy quantities: a trajectory's tool use against the task's must-use set S_req and its
ground-truth box (docs/methods.md, CodeVision).

- `step_crop_ious`: per step, the best IoU of that step's crops with a ground-truth (evidence) box;
- `must_use_credits` (paper): per step t, each must-use op of S_req \\ {crop} earns 1/|S_req| the first time
  it is used correctly (in a block that ran to the end), and crop earns (IoU_t - max IoU before t)^+ / |S_req|,
  so credit is paid where it was earned and only for improvement;
- `mandatory_score` (released code): r_mand = min(1, |(S_req \\ {crop}) & used| / |S_req|
  + [crop in S_req and used] * max IoU / |S_req|).

Summed over steps, the paper's credits equal the code's r_mand (before the cap, which they never exceed): the
variants differ in *where* the reward lands (each step vs. the end) and in what they do with it (the code gates
accuracy by it; see `rewards.components.codevision_code`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.evidence import best_iou
from rewards.tool_use import StepToolUse, used_ops
from rollout.task import Task
from sandbox.result import CORE_OPS, ORIENTATION_OPS


def required_set(task: Task) -> set[str]:
    """S_req: the task's must-use operations."""
    return set(task.required_ops)


def step_crop_ious(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                   include_failed: bool = False) -> list[float]:
    """Best IoU of each step's crops with any evidence box (0 for steps that do not count or made no crop)."""
    out = []
    for s in steps:
        if not (s.ran if include_failed else s.ok):
            out.append(0.0)
            continue
        out.append(max((best_iou(i, box, task.evidence, sizes) for i, box in s.crop_boxes()), default=0.0))
    return out


def max_crop_iou(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                 include_failed: bool = False) -> float:
    return max(step_crop_ious(steps, task, sizes, include_failed), default=0.0)


def must_use_credits(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                     include_failed: bool = False) -> list[float]:
    """The paper's per-step must-use credit (see the module docstring); all zeros when S_req is empty."""
    req = required_set(task)
    k = len(req)
    if k == 0:
        return [0.0] * len(steps)
    ious = step_crop_ious(steps, task, sizes, include_failed)
    credited: set[str] = set()
    best = 0.0
    out = []
    for s, iou_t in zip(steps, ious, strict=True):
        credit = 0.0
        if s.ran if include_failed else s.ok:
            for op in sorted((req - {"crop"}) & s.op_names() - credited):
                credit += 1.0 / k
                credited.add(op)
        if "crop" in req and iou_t > best:
            credit += (iou_t - best) / k
            best = iou_t
        out.append(credit)
    return out


def mandatory_score(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                    include_failed: bool = False) -> float:
    """The released code's r_mand (see the module docstring); 0 when S_req is empty."""
    req = required_set(task)
    if not req:
        return 0.0
    used = used_ops(steps, include_failed)
    score = len((req - {"crop"}) & used) / len(req)
    if "crop" in req and "crop" in used:
        score += max_crop_iou(steps, task, sizes, include_failed) / len(req)
    return min(1.0, score)


def core_ops_used(steps: Sequence[StepToolUse], include_failed: bool = False) -> set[str]:
    """Used ops among the six core ops."""
    return used_ops(steps, include_failed) & set(CORE_OPS)


def orientation_ops_used(steps: Sequence[StepToolUse], include_failed: bool = False) -> set[str]:
    return used_ops(steps, include_failed) & set(ORIENTATION_OPS)
